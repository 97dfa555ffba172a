//! Stamps the git revision and the build date into the binary, for
//! `replag_build_info` and `replag --version`.
use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string()).filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=REPLAG_REVISION");
    // A build without .git (a container build) is told its revision.
    let revision = std::env::var("REPLAG_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]));
    println!("cargo:rustc-env=REPLAG_GIT_REVISION={}", revision.as_deref().unwrap_or("unknown"));
    // Reproducible builds set SOURCE_DATE_EPOCH; otherwise today (UTC).
    let date = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => output("date", &["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%d"]),
        Err(_) => output("date", &["-u", "+%Y-%m-%d"]),
    };
    println!("cargo:rustc-env=REPLAG_BUILD_DATE={}", date.as_deref().unwrap_or("unknown"));
}
