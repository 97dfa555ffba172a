//! Writing Prometheus text exposition: families of gauges and counters set
//! series by series, written in the text format exactly as the prometheus
//! crate's `TextEncoder` writes it. Below the systems, so each system writes
//! its own families with it.

use std::cell::RefCell;

use prometheus::proto::MetricType;

/// Labels of every node-level series.
pub const NODE_LABELS: &[&str] = &["system", "node", "node_region"];
/// Labels of every link-level series (`LinkId::LABELS`).
pub const LINK_LABELS: &[&str] = &crate::model::LinkId::LABELS;

/// The families of one render. (Through a `Registry` of `GaugeVec`s — a
/// `Desc`, a hash and a lock per series, then a `gather` that copies
/// everything — a render cost ~9 µs and 43 allocations per series; through
/// the crate's structs and `TextEncoder`, ~1.5 µs and 12.5; with a String
/// per label value, ~0.35 µs and 5.7.)
#[derive(Default)]
pub struct Families {
    families: RefCell<Vec<FamilyData>>,
}

struct FamilyData {
    name: String,
    help: String,
    kind: MetricType,
    label_names: Vec<String>,
    /// Every label value of the family, each followed by a NUL: a family of
    /// 50k series makes a few allocations, not one per label, and a series'
    /// values in a row compare as their tuple does (NUL sorts first), so
    /// sorting them is a `memcmp` each.
    values: String,
    /// Where each label value ends in `values` (at its NUL).
    ends: Vec<usize>,
    /// A label value holds a NUL itself: compare value by value.
    nul_in_values: bool,
    /// (index in `ends` of the series' first label value, value) in the
    /// order set; at encoding, setting the same labels again replaces the
    /// value (a counter adds to it), as with the crate's own vectors.
    series: Vec<(usize, f64)>,
}

impl FamilyData {
    /// The label values of the series whose first value is `first`.
    fn labels(&self, first: usize) -> impl Iterator<Item = &str> + Clone + '_ {
        (first..first + self.label_names.len()).map(move |i| &self.values[self.start(i)..self.ends[i]])
    }

    fn start(&self, value: usize) -> usize {
        if value == 0 {
            0
        } else {
            self.ends[value - 1] + 1
        }
    }

    /// The series' label values in a row, NUL after each.
    fn key(&self, first: usize) -> &[u8] {
        match self.label_names.len() {
            0 => &[],
            n => &self.values.as_bytes()[self.start(first)..=self.ends[first + n - 1]],
        }
    }

    /// The order of two series' label values (as tuples).
    fn cmp_labels(&self, a: usize, b: usize) -> std::cmp::Ordering {
        if self.nul_in_values {
            self.labels(a).cmp(self.labels(b))
        } else {
            self.key(a).cmp(self.key(b))
        }
    }
}

/// A family to set series of.
#[derive(Clone, Copy)]
pub struct Family<'a> {
    families: &'a Families,
    index: usize,
}

/// One series of a family: set it (or, for a counter, add to it).
pub struct Series<'a> {
    family: Family<'a>,
    first: usize,
}

impl<'a> Family<'a> {
    pub fn with_label_values(&self, values: &[&str]) -> Series<'a> {
        let mut families = self.families.families.borrow_mut();
        let family = &mut families[self.index];
        debug_assert_eq!(values.len(), family.label_names.len(), "{}: label count", family.name);
        let first = family.ends.len();
        for value in values {
            family.nul_in_values |= value.contains('\0');
            family.values.push_str(value);
            family.ends.push(family.values.len());
            family.values.push('\0');
        }
        Series { family: *self, first }
    }
}

impl Series<'_> {
    pub fn set(self, value: f64) {
        self.record(value);
    }

    /// For a counter: encoding sums what was recorded for the same labels.
    pub fn inc_by(self, n: u64) {
        self.record(n as f64);
    }

    fn record(self, value: f64) {
        let mut families = self.family.families.families.borrow_mut();
        families[self.family.index].series.push((self.first, value));
    }
}

impl Families {
    fn family(&self, name: &str, help: &str, labels: &[&str], kind: MetricType) -> Family<'_> {
        let mut families = self.families.borrow_mut();
        debug_assert!(families.iter().all(|f| f.name != name), "metric names are unique: {name}");
        families.push(FamilyData {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            label_names: labels.iter().map(|l| l.to_string()).collect(),
            values: String::new(),
            ends: Vec::new(),
            nul_in_values: false,
            series: Vec::new(),
        });
        Family { families: self, index: families.len() - 1 }
    }

    pub fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Family<'_> {
        self.family(name, help, labels, MetricType::GAUGE)
    }

    /// A family without labels: its one series.
    pub fn plain_gauge(&self, name: &str, help: &str) -> Series<'_> {
        self.gauge(name, help, &[]).with_label_values(&[])
    }

    pub fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Family<'_> {
        self.family(name, help, labels, MetricType::COUNTER)
    }

    /// The text exposition format, families by name, series by label values;
    /// families without series are left out (as a registry leaves them).
    /// Written directly, byte for byte what the prometheus crate's
    /// `TextEncoder` writes for the same families (a test holds it to that):
    /// building its structs first cost a `LabelPair` (two Strings) per label
    /// and a `Metric` per series, most of a render.
    pub fn encode(self) -> String {
        let mut families = self.families.into_inner();
        families.sort_by(|a, b| a.name.cmp(&b.name));
        let series_total: usize = families.iter().map(|f| f.series.len()).sum();
        let mut out = String::with_capacity(series_total * 128);
        for mut f in families.into_iter().filter(|f| !f.series.is_empty()) {
            let mut series = std::mem::take(&mut f.series);
            // Stable: of equal label values, the one set last comes last.
            // (Set in order, as most are, this is one pass.)
            series.sort_by(|a, b| f.cmp_labels(a.0, b.0));
            series.dedup_by(|later, earlier| {
                let same = f.cmp_labels(later.0, earlier.0).is_eq();
                if same {
                    earlier.1 = if f.kind == MetricType::COUNTER { earlier.1 + later.1 } else { later.1 };
                }
                same
            });
            if !f.help.is_empty() {
                out.push_str("# HELP ");
                out.push_str(&f.name);
                out.push(' ');
                push_escaped(&mut out, &f.help, false);
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(&f.name);
            out.push_str(if f.kind == MetricType::COUNTER { " counter\n" } else { " gauge\n" });
            for (first, value) in series {
                out.push_str(&f.name);
                for (i, (name, value)) in f.label_names.iter().zip(f.labels(first)).enumerate() {
                    out.push(if i == 0 { '{' } else { ',' });
                    out.push_str(name);
                    out.push_str("=\"");
                    push_escaped(&mut out, value, true);
                    out.push('"');
                }
                if !f.label_names.is_empty() {
                    out.push('}');
                }
                out.push(' ');
                push_value(&mut out, value);
                out.push('\n');
            }
        }
        out
    }
}

/// A value as `{}` writes an f64 ("1", "0.25", "-0", "NaN", "inf"), the
/// many whole ones (flags, counts, bytes) through the integer formatter,
/// several times faster than the float one.
fn push_value(out: &mut String, value: f64) {
    use std::fmt::Write as _;
    let whole = value.fract() == 0.0 && value.abs() < 1e15 && !(value == 0.0 && value.is_sign_negative());
    let _ = if whole { write!(out, "{}", value as i64) } else { write!(out, "{value}") };
}

/// The text format's escaping: backslash and newline (help text), and the
/// double quote too (label values).
fn push_escaped(out: &mut String, text: &str, quote: bool) {
    if !text.bytes().any(|b| b == b'\\' || b == b'\n' || (quote && b == b'"')) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// `base` labels followed by `extra` ones.
pub fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

/// A metric value for a boolean.
pub fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The `process_*` families every exporter serves (CPU seconds, resident
/// and virtual memory, open and max file descriptors, start time), from the
/// prometheus crate's collector reading /proc/self. Empty elsewhere.
pub fn process_metrics() -> String {
    #[cfg(target_os = "linux")]
    {
        use prometheus::core::Collector;
        static COLLECTOR: std::sync::OnceLock<prometheus::process_collector::ProcessCollector> =
            std::sync::OnceLock::new();
        let families = COLLECTOR.get_or_init(prometheus::process_collector::ProcessCollector::for_self).collect();
        let mut text = String::new();
        if prometheus::TextEncoder::new().encode_utf8(&families, &mut text).is_ok() {
            return text;
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily};
    use proptest::prelude::*;

    /// The oracle: the same families as the prometheus crate's structs,
    /// written by its `TextEncoder` (how `encode` worked before).
    fn with_text_encoder(families: &Families) -> String {
        type Copied = (String, String, MetricType, Vec<String>, Vec<(Vec<String>, f64)>);
        let mut data: Vec<Copied> = families
            .families
            .borrow()
            .iter()
            .map(|f| {
                let series = f.series.iter().map(|(first, v)| (f.labels(*first).map(String::from).collect(), *v));
                (f.name.clone(), f.help.clone(), f.kind, f.label_names.clone(), series.collect())
            })
            .collect();
        data.sort_by(|a, b| a.0.cmp(&b.0));
        let protos: Vec<MetricFamily> = data
            .into_iter()
            .filter(|f| !f.4.is_empty())
            .map(|(name, help, kind, label_names, mut series)| {
                series.sort_by(|a, b| a.0.cmp(&b.0));
                series.dedup_by(|later, earlier| {
                    let same = later.0 == earlier.0;
                    if same {
                        earlier.1 = if kind == MetricType::COUNTER { earlier.1 + later.1 } else { later.1 };
                    }
                    same
                });
                let metrics = series
                    .into_iter()
                    .map(|(values, value)| {
                        let labels = label_names
                            .iter()
                            .zip(values)
                            .map(|(n, v)| {
                                let mut pair = LabelPair::default();
                                pair.set_name(n.clone());
                                pair.set_value(v);
                                pair
                            })
                            .collect();
                        let mut metric = Metric::from_label(labels);
                        if kind == MetricType::COUNTER {
                            let mut c = Counter::default();
                            c.set_value(value);
                            metric.set_counter(c);
                        } else {
                            let mut g = Gauge::default();
                            g.set_value(value);
                            metric.set_gauge(g);
                        }
                        metric
                    })
                    .collect();
                let mut family = MetricFamily::default();
                family.set_name(name);
                family.set_help(help);
                family.set_field_type(kind);
                family.set_metric(metrics);
                family
            })
            .collect();
        prometheus::TextEncoder::new().encode_to_string(&protos).unwrap()
    }

    type FamilySpec = (String, bool, Vec<String>, Vec<(Vec<String>, f64)>);

    fn families_of(specs: &[FamilySpec]) -> Families {
        let families = Families::default();
        for (i, (help, counter, labels, series)) in specs.iter().enumerate() {
            // Unique names and label names, in an order unlike the sorted one.
            let name = format!("m{}_{}", specs.len() - i, i);
            let labels: Vec<String> = labels.iter().enumerate().map(|(j, l)| format!("{l}{j}")).collect();
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            let family =
                if *counter { families.counter(&name, help, &labels) } else { families.gauge(&name, help, &labels) };
            for (values, value) in series {
                let values: Vec<&str> = (0..labels.len()).map(|k| values.get(k).map_or("", String::as_str)).collect();
                if *counter {
                    family.with_label_values(&values).inc_by(value.abs().min(1e15) as u64);
                } else {
                    family.with_label_values(&values).set(*value);
                }
            }
        }
        families
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(1.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e21),
            Just(1.5e-7),
            Just(u64::MAX as f64),
            any::<f64>(),
            (0u32..100_000).prop_map(|n| n as f64 / 1000.0),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        // Few distinct characters (so label values repeat and series merge),
        // every one the format escapes, and NUL (which `encode` sorts by).
        "[ab\"\\\\\n é,={}\0]{0,6}"
    }

    proptest! {
        #[test]
        fn writes_what_the_crates_text_encoder_writes(
            specs in prop::collection::vec(
                (text(), any::<bool>(), prop::collection::vec("[a-z_]{1,4}", 0..4),
                 prop::collection::vec((prop::collection::vec(text(), 0..4), value()), 0..6)),
                0..6)
        ) {
            let expected = with_text_encoder(&families_of(&specs));
            prop_assert_eq!(families_of(&specs).encode(), expected);
        }
    }
}
