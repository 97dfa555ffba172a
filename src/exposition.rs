//! Writing Prometheus text exposition: families of gauges and counters set
//! series by series, encoded by the prometheus crate's `TextEncoder`. Below
//! the systems, so each system writes its own families with it.

use std::cell::RefCell;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::TextEncoder;

/// Labels of every node-level series.
pub const NODE_LABELS: &[&str] = &["system", "node", "node_region"];
/// Labels of every link-level series (`LinkId::LABELS`).
pub const LINK_LABELS: &[&str] = &crate::model::LinkId::LABELS;

/// The families of one render, built as the prometheus crate's metric
/// structs and written by its `TextEncoder`. (Through a `Registry` of
/// `GaugeVec`s — a `Desc`, a hash and a lock per series, then a `gather` that
/// copies everything — a render cost ~9 µs and 43 allocations per series.)
#[derive(Default)]
pub struct Families {
    families: RefCell<Vec<FamilyData>>,
}

struct FamilyData {
    name: String,
    help: String,
    kind: MetricType,
    label_names: Vec<String>,
    /// (label values, value) in the order set; at encoding, setting the same
    /// labels again replaces the value (a counter adds to it), as with the
    /// crate's own vectors.
    series: Vec<(Vec<String>, f64)>,
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
    values: Vec<String>,
}

impl<'a> Family<'a> {
    pub fn with_label_values(&self, values: &[&str]) -> Series<'a> {
        let values = values.iter().map(|v| v.to_string()).collect();
        Series { family: *self, values }
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
        let family = &mut families[self.family.index];
        debug_assert_eq!(self.values.len(), family.label_names.len(), "{}: label count", family.name);
        family.series.push((self.values, value));
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
    pub fn encode(self) -> String {
        let mut families = self.families.into_inner();
        families.sort_by(|a, b| a.name.cmp(&b.name));
        let protos: Vec<MetricFamily> = families
            .into_iter()
            .filter(|f| !f.series.is_empty())
            .map(|f| {
                let mut series = f.series;
                // Stable: of equal label values, the one set last comes last.
                series.sort_by(|a, b| a.0.cmp(&b.0));
                series.dedup_by(|later, earlier| {
                    let same = later.0 == earlier.0;
                    if same {
                        earlier.1 = if f.kind == MetricType::COUNTER { earlier.1 + later.1 } else { later.1 };
                    }
                    same
                });
                let metrics = series
                    .into_iter()
                    .map(|(values, value)| {
                        let labels = f
                            .label_names
                            .iter()
                            .zip(values)
                            .map(|(name, value)| {
                                let mut pair = LabelPair::default();
                                pair.set_name(name.clone());
                                pair.set_value(value);
                                pair
                            })
                            .collect();
                        let mut metric = Metric::from_label(labels);
                        match f.kind {
                            MetricType::COUNTER => {
                                let mut counter = Counter::default();
                                counter.set_value(value);
                                metric.set_counter(counter);
                            }
                            _ => {
                                let mut gauge = Gauge::default();
                                gauge.set_value(value);
                                metric.set_gauge(gauge);
                            }
                        }
                        metric
                    })
                    .collect();
                let mut family = MetricFamily::default();
                family.set_name(f.name);
                family.set_help(f.help);
                family.set_field_type(f.kind);
                family.set_metric(metrics);
                family
            })
            .collect();
        TextEncoder::new().encode_to_string(&protos).expect("text encoding cannot fail")
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
