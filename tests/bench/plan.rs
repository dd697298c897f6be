//! `cargo bench --bench plan`: `devcluster plan` as a cold process (what a user and a
//! script pay), for the `ingress` profile and a generated 50-node profile, with peak
//! memory from `/usr/bin/time` when it is installed (Debian package `time`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 50;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Wall times in milliseconds, sorted.
fn time_runs(args: &[&str], cwd: &Path) -> Vec<f64> {
    let binary = env!("CARGO_BIN_EXE_devcluster");
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let out = Command::new(binary)
                .args(args)
                .current_dir(cwd)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            elapsed
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times
}

/// Peak resident memory in KiB, from GNU time's `%M`.
fn peak_kib(args: &[&str], cwd: &Path) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", env!("CARGO_BIN_EXE_devcluster")])
        .args(args)
        .current_dir(cwd)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

fn report(label: &str, args: &[&str], cwd: &Path, median_target: f64, peak_target: Option<f64>) {
    let times = time_runs(args, cwd);
    let median = percentile(&times, 0.5);
    let peak = peak_kib(args, cwd);
    println!("{label} ({RUNS} cold runs)");
    println!(
        "  median {median:.2} ms, p95 {:.2} ms, max {:.2} ms (target: median < {median_target} ms)",
        percentile(&times, 0.95),
        times[times.len() - 1]
    );
    match (peak, peak_target) {
        (Some(kib), Some(target)) => println!(
            "  peak memory {:.1} MiB (target < {target} MiB)",
            kib as f64 / 1024.0
        ),
        (Some(kib), None) => println!("  peak memory {:.1} MiB", kib as f64 / 1024.0),
        (None, _) => println!("  peak memory: /usr/bin/time not installed (apt-get install time)"),
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("devcluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    report(
        "plan --profile ingress",
        &["plan", "--profile", "ingress"],
        &dir,
        20.0,
        Some(15.0),
    );

    let mut big = String::from(
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nname: big\nnodes:\n  controlPlanes: 1\n  workers: 49\n  ingress: worker\ningress:\n  enabled: true\n  controller: none\n  httpPort: 8080\n  httpsPort: 8443\nmounts:\n  - hostPath: ./src\n    containerPath: /src\n    readOnly: true\n",
    );
    big.push_str("ports:\n");
    for worker in 2..=49 {
        big.push_str(&format!(
            "  - containerPort: 30080\n    hostPort: {}\n    node: worker{worker}\n",
            9000 + worker
        ));
    }
    let profile = dir.join("fifty.yaml");
    std::fs::write(&profile, big).unwrap_or_else(|e| panic!("{e}"));
    let path = profile.display().to_string();
    report(
        "plan of a 50-node profile (a mount on every node, a port on 48)",
        &["plan", "--profile", &path],
        &dir,
        50.0,
        None,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
