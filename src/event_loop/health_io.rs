//! The node's health sources as the loop polls them: hwmon sensors, /proc/mdstat and the
//! kernel's error counters (`errors`) on a fixed cadence, ping nodes on their own sockets (ICMP and ICMPv6),
//! the BMC (`ipmi`) on its device, whose answers come when they come and are read when it
//! polls readable (one request at a time, a round of them every 2 s: nothing per heartbeat),
//! `check` commands as child processes. Each
//! source reports its reasons to the `HealthMonitor`, whose changes the loop feeds the core.
//! The judging (ping reachability and stalls, debounce, hysteresis, trends, md verdicts)
//! lives in `health`; the drivers read and parse.

use std::os::fd::{AsRawFd, RawFd};

use log::{debug, info, warn};

use crate::config::Config;
use crate::core::time::{Duration, Instant};
use crate::drivers::children::{Children, Class, ExitStatus, Program, SpawnError, Spec};
use crate::drivers::errors::ErrorSource;
use crate::drivers::hwmon::{Hwmon, SensorOverride};
use crate::drivers::ipmi::IpmiSource;
use crate::drivers::mdstat::MdStatReader;
use crate::drivers::ping::Ping;
use crate::health::check::{CheckExit, CheckSchedule, CheckSpec};
use crate::health::reach;
use crate::health::sensor::SensorPolicy;
use crate::health::{HealthMonitor, Reasons, Source, check_reason};
use crate::limits::{CHECKS_MAX, ERROR_SOURCES_MAX};

use super::group::Tag;

/// How often hwmon inputs, /proc/mdstat and the error counters are read.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);
/// Ping intervals without an answer after which a node is unreachable.
pub const PING_WINDOW: u32 = reach::PING_WINDOW;
/// At most one warning per this long about check runs skipped for want of a child slot.
const SKIP_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The health sources of this node.
pub struct HealthIo {
    /// The aggregate the core and status read.
    pub monitor: HealthMonitor,
    /// The hwmon chips, when `hwmon` lines are configured.
    pub hwmon: Option<Hwmon>,
    /// /proc/mdstat, when `raid` is configured.
    pub mdstat: Option<MdStatReader>,
    /// The ping nodes, when configured.
    pub ping: Option<Ping>,
    /// The `errors` sources, in configuration order.
    pub errors: heapless::Vec<ErrorSource, ERROR_SOURCES_MAX>,
    /// The BMC, when `ipmi` is configured.
    pub ipmi: Option<IpmiSource>,
    /// Echoes due within this long go out on the wake at hand (half a keepalive, when the
    /// ping interval is at least one): pings ride on heartbeat wakes instead of adding their
    /// own. The loop only wakes for them once they are this long overdue.
    ping_early: Duration,
    checks: CheckSchedule,
    /// Check runs skipped for want of a child slot, and when that was last warned about.
    checks_skipped: u64,
    checks_skipped_warned: Option<Instant>,
    check_cmds: heapless::Vec<(heapless::String<32>, String, Duration), CHECKS_MAX>,
    next_sample: Instant,
    scratch: Reasons,
}

impl HealthIo {
    /// Opens every configured source. A source that cannot be opened makes the node
    /// unhealthy with that reason (a node that cannot see its sensors should not hold the
    /// group over a healthy peer), it does not stop the daemon.
    pub fn open(config: &Config, now: Instant) -> HealthIo {
        let mut io = HealthIo {
            monitor: HealthMonitor::new(),
            hwmon: None,
            mdstat: None,
            ping: None,
            errors: heapless::Vec::new(),
            ipmi: None,
            ping_early: ping_early(config),
            checks: CheckSchedule::default(),
            checks_skipped: 0,
            checks_skipped_warned: None,
            check_cmds: heapless::Vec::new(),
            next_sample: now,
            scratch: Reasons::new(),
        };
        io.open_hwmon(config);
        if let Some(path) = &config.health.raid {
            match MdStatReader::open(path) {
                Ok(r) => io.mdstat = Some(r),
                Err(e) => io.report_open_error(Source::Raid, &path.display(), &e),
            }
        }
        io.open_ping(config, now);
        for line in &config.health.errors {
            // INVARIANT: the config holds at most ERROR_SOURCES_MAX sources.
            let _ = io.errors.push(ErrorSource::open(line));
        }
        if let Some(line) = &config.health.ipmi {
            let statedir = Some(config.local.statedir.as_path());
            io.ipmi = Some(IpmiSource::open(&line.device, statedir, now));
            io.report_ipmi();
        }
        io.open_checks(config, now);
        io
    }

    fn open_hwmon(&mut self, config: &Config) {
        let Some(first) = config.health.hwmon.first() else { return };
        let chips: heapless::Vec<&str, { crate::limits::HWMON_CHIPS_MAX }> =
            config.health.hwmon.iter().map(|h| h.chip.as_str()).collect();
        let overrides: Vec<SensorOverride> = config
            .health
            .sensors
            .iter()
            .map(|s| {
                let mut o = SensorOverride {
                    min_milli: s.min_milli,
                    max_milli: s.max_milli,
                    crit_milli: s.crit_milli,
                    ..SensorOverride::default()
                };
                crate::status::set_text(&mut o.chip, &s.chip);
                crate::status::set_text(&mut o.input, &s.input);
                o
            })
            .collect();
        match Hwmon::open(&first.root, &chips, &overrides, SensorPolicy::default()) {
            Ok(h) => {
                info!("hwmon: watching {} inputs", h.inputs().len());
                self.hwmon = Some(h);
            }
            Err(e) => self.report_open_error(Source::Sensor, &first.root.display(), &e),
        }
    }

    fn open_ping(&mut self, config: &Config, now: Instant) {
        let addrs = &config.health.ping;
        if addrs.is_empty() {
            return;
        }
        match Ping::open(addrs, ping_interval(config), PING_WINDOW, now) {
            Ok(p) => self.ping = Some(p),
            Err(e) => self.report_open_error(Source::Ping, &"ping socket", &e),
        }
    }

    fn open_checks(&mut self, config: &Config, now: Instant) {
        let specs: heapless::Vec<CheckSpec, CHECKS_MAX> = config
            .health
            .checks
            .iter()
            .map(|c| CheckSpec { interval: c.interval, timeout: c.timeout })
            .collect();
        // INVARIANT: the config holds at most CHECKS_MAX checks.
        self.checks = CheckSchedule::new(&specs, now).unwrap_or_default();
        for c in &config.health.checks {
            let mut name = heapless::String::new();
            crate::status::set_text(&mut name, &c.name);
            let _ = self.check_cmds.push((name, c.command.clone(), c.timeout));
        }
    }

    fn report_open_error(
        &mut self,
        source: Source,
        what: &dyn std::fmt::Display,
        e: &dyn std::fmt::Display,
    ) {
        warn!("health: {what}: {e}");
        self.scratch.clear();
        self.scratch.push(format_args!("{what}: {e}"));
        self.monitor.handle_report(source, &self.scratch);
    }

    /// The ping sockets (one per address family in use), to poll for replies.
    pub fn ping_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.ping.iter().flat_map(|p| p.fds().map(|fd| fd.as_raw_fd()))
    }

    /// The BMC's device, to poll for answers.
    pub fn ipmi_fd(&self) -> Option<RawFd> {
        self.ipmi.as_ref().and_then(IpmiSource::fd)
    }

    /// Takes the BMC's answers, sends what follows, and reports what they say.
    pub fn handle_ipmi_readable(&mut self, now: Instant) {
        if let Some(i) = &mut self.ipmi {
            i.handle_readable(now);
            self.report_ipmi();
        }
    }

    fn report_ipmi(&mut self) {
        let Some(i) = &self.ipmi else { return };
        self.scratch.clear();
        i.reasons(&mut self.scratch);
        self.monitor.handle_report(Source::Ipmi, &self.scratch);
    }

    /// `hapair cleanup` (of the node, not of one resource): a SEL failure latched by the BMC
    /// source is released (the operator has looked).
    pub fn handle_cleanup(&mut self) {
        if let Some(i) = &mut self.ipmi {
            i.handle_cleanup();
            self.report_ipmi();
        }
    }

    /// Reads replies on the ping sockets.
    pub fn handle_ping_readable(&mut self, now: Instant) {
        if let Some(p) = &mut self.ping {
            p.handle_readable(now);
        }
    }

    /// Does whatever is due: samples, echoes, check starts and timeouts. `stall_after` is
    /// the core's stall threshold: a longer gap since the last call means this node stalled
    /// (`Reach::handle_wake`).
    pub fn poll(&mut self, now: Instant, stall_after: Duration, children: &mut Children<Tag>) {
        if let Some(p) = &mut self.ping
            && p.reach_mut().handle_wake(now, stall_after)
        {
            debug!("stalled until {now}: ping silence counts from now");
        }
        if now >= self.next_sample {
            self.next_sample = now + SAMPLE_INTERVAL;
            self.sample(now);
        }
        if let Some(i) = &mut self.ipmi
            && now >= i.next_deadline()
        {
            i.poll(now);
            self.report_ipmi();
        }
        if let Some(p) = &mut self.ping {
            p.send_within(now, self.ping_early);
            self.scratch.clear();
            p.reasons(&mut self.scratch);
            self.monitor.handle_report(Source::Ping, &self.scratch);
        }
        while let Some(i) = self.checks.poll_start(now) {
            self.start_check(now, i, children);
        }
        // A check past its timeout is killed by the supervisor (same duration), which then
        // reports it as timed out; the schedule's own notice adds nothing.
        while self.checks.poll_timeout(now).is_some() {}
    }

    fn sample(&mut self, now: Instant) {
        if let Some(h) = &mut self.hwmon {
            h.read(now);
            self.scratch.clear();
            h.reasons(&mut self.scratch);
            self.monitor.handle_report(Source::Sensor, &self.scratch);
        }
        if let Some(r) = &mut self.mdstat {
            self.scratch.clear();
            match r.read() {
                Ok(md) => md.reasons(&mut self.scratch),
                Err(e) => self.scratch.push(format_args!("mdstat: {e}")),
            }
            self.monitor.handle_report(Source::Raid, &self.scratch);
        }
        if !self.errors.is_empty() {
            for e in &mut self.errors {
                let before = e.judge.verdict();
                let after = e.read(now);
                if e.line.on_link() && after != before {
                    log_link_errors(&e.line, after);
                }
            }
            self.report_errors();
        }
    }

    /// The node's reasons from the `errors` sources: those that report to their links
    /// (`report link`) give none; `status` shows them on the links (`report::fill_nic_errors`).
    fn report_errors(&mut self) {
        self.scratch.clear();
        for e in self.errors.iter().filter(|e| !e.line.on_link()) {
            let l = &e.line;
            let verdict = e.judge.verdict();
            crate::health::errors::reason(
                &mut self.scratch,
                l.kind,
                &l.name,
                verdict,
                l.max,
                l.window,
            );
        }
        self.monitor.handle_report(Source::Errors, &self.scratch);
    }

    /// A reload: the `errors` sources whose line did not change keep their judges (window,
    /// baseline, verdict) from `old`, so that a reload neither forgets errors in a window
    /// nor counts errors from before it again; an `ipmi` source on the same device keeps its
    /// conversation (the records read, the SEL's baseline and a latched failure).
    pub fn keep_judges_from(&mut self, old: &mut HealthIo) {
        for new in &mut self.errors {
            if let Some(o) = old.errors.iter_mut().find(|o| o.line == new.line) {
                core::mem::swap(new, o);
            }
        }
        self.report_errors();
        if let (Some(new), Some(o)) = (&mut self.ipmi, &mut old.ipmi)
            && new.device == o.device
        {
            core::mem::swap(new, o);
            self.report_ipmi();
        }
    }

    fn start_check(&mut self, now: Instant, i: usize, children: &mut Children<Tag>) {
        let Some((name, cmd, timeout)) = self.check_cmds.get(i) else { return };
        let timeout = *timeout;
        let spec = Spec {
            program: Program::Shell(cmd),
            args: &[],
            env: &[],
            clear_env: false,
            stdin: &[],
            stdout: None,
            timeout,
            class: Class::Ordinary,
            // INVARIANT: i < CHECKS_MAX, which fits a u8.
            tag: Tag::Check(i as u8),
        };
        match children.spawn(now, &spec) {
            Ok(_) => {}
            // No slot (its share is taken): our own shortage, not the check's verdict. This
            // round is skipped, its last result stands, the next is due one interval on.
            Err(e @ (SpawnError::ShareFull | SpawnError::TableFull)) => {
                self.checks_skipped += 1;
                if self.checks_skipped_warned.is_none_or(|t| now >= t + SKIP_WARN_INTERVAL) {
                    self.checks_skipped_warned = Some(now);
                    warn!(
                        "check {name}: skipped this round: {e} ({} skipped)",
                        self.checks_skipped
                    );
                }
                self.checks.skip(i);
            }
            Err(e) => {
                warn!("check {name}: cannot start: {e}");
                self.handle_check_exit(i, CheckExit::SpawnFailed);
            }
        }
    }

    /// A check child ended.
    pub fn handle_check_exit_status(&mut self, i: usize, status: ExitStatus) {
        let exit = match status {
            ExitStatus::Code(c) => CheckExit::Exited(c),
            ExitStatus::Signaled(s) => CheckExit::Signaled(s),
            ExitStatus::TimedOut => CheckExit::TimedOut,
            ExitStatus::ExecFailed(_) => CheckExit::SpawnFailed,
        };
        self.handle_check_exit(i, exit);
    }

    fn handle_check_exit(&mut self, i: usize, exit: CheckExit) {
        self.checks.handle_exit(i, exit);
        self.scratch.clear();
        for (j, last) in self.checks.failing() {
            if let Some((name, _, _)) = self.check_cmds.get(j) {
                check_reason(&mut self.scratch, name, last);
            }
        }
        self.monitor.handle_report(Source::Check, &self.scratch);
    }

    /// The watchdog's state as a health source: `problem` with `device`, or healthy.
    pub fn report_watchdog(
        &mut self,
        device: &std::path::Path,
        problem: Option<&dyn std::fmt::Display>,
    ) {
        self.scratch.clear();
        if let Some(p) = problem {
            self.scratch.push(format_args!("watchdog {}: {p}", device.display()));
        }
        self.monitor.handle_report(Source::Watchdog, &self.scratch);
    }

    /// When something is next due.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self.next_sample;
        if let Some(p) = &self.ping {
            next = next.min(p.reach().wake_at(self.ping_early));
        }
        if let Some(d) = self.checks.next_deadline() {
            next = next.min(d);
        }
        if let Some(i) = &self.ipmi {
            next = next.min(i.next_deadline());
        }
        next
    }
}

/// Logs a change of an `errors net` source that reports to its links: the node's health does
/// not say it, so the log does.
fn log_link_errors(line: &crate::config::Errors, verdict: crate::health::errors::Verdict) {
    if verdict.is_unhealthy() {
        warn!(
            "errors net {}: {} (limit {} in {}): reported on its heartbeat links, the node \
             stays healthy",
            line.name,
            verdict.name(),
            line.max,
            line.window
        );
    } else {
        info!("errors net {}: ok again", line.name);
    }
}

/// How early echoes may go out to ride on a heartbeat wake (`reach::ping_early`).
pub fn ping_early(config: &Config) -> Duration {
    reach::ping_early(config.pair.keepalive, ping_interval(config))
}

/// How often each ping node gets an echo (`reach::ping_interval`), from the longest link
/// deadtime (SPEC §7.7; the global deadtime when the links have no timing of their own): the
/// survivor's wait follows that deadtime, so a holder cut off from its ping nodes must know it
/// within about that long, not the global deadtime's (links all faster than the global timing
/// would otherwise leave the survivor's wait shorter than the holder's ping window).
pub fn ping_interval(config: &Config) -> Duration {
    reach::ping_interval(config.pair.longest_deadtime())
}
