//! The async shell of the cabinet: the real-time loop and the MQTT link.
//!
//! - The loop is the only place wall-clock time enters: [`Clock`] maps it to model time
//!   (Unix milliseconds), optionally faster than real time (`speed`), so the same code runs at
//!   100x against the simulator in tests.
//! - MQTT runs in its own tasks. The signal loop never waits for it: messages go through
//!   bounded channels with `try_send`, so a dead broker cannot stall signal timing.
//! - Detector reports go through the on-disk [`DiskQueue`] and are published one at a time
//!   with QoS 1; each leaves the queue only when the broker acknowledged it, so a broker
//!   outage or restart loses none (the optimizer drops duplicates by `seq`).
//! - Status is retained, with a last will that says `online: false`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use intersections::messages::topic;
use intersections::{Colour, Ms};
use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Outgoing as MqttOut, Packet, QoS, TlsConfiguration,
    Transport,
};
use tokio::sync::{mpsc, watch};

use crate::cabinet::{Cabinet, Outgoing};
use crate::config::CabinetConfig;
use intersections::queue::DiskQueue;

/// Wall clock to model time. The only reader of the wall clock in Greenwave's models.
#[derive(Clone, Debug)]
pub struct Clock {
    wall_start: tokio::time::Instant,
    model_start: Ms,
    speed: f64,
}

impl Clock {
    /// Model time = Unix time now, running `speed` times faster than real time from here on.
    #[allow(clippy::disallowed_methods)] // the one place wall time enters
    pub fn real(speed: f64) -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock::starting_at(Ms(unix), speed)
    }

    /// Model time `model_start` now, running `speed` times faster than real time.
    pub fn starting_at(model_start: Ms, speed: f64) -> Self {
        Clock {
            wall_start: tokio::time::Instant::now(),
            model_start,
            speed: speed.max(0.001),
        }
    }

    pub fn now(&self) -> Ms {
        let el = self.wall_start.elapsed().as_secs_f64() * 1000.0 * self.speed;
        self.model_start + Ms(el as i64)
    }

    /// The wall instant at which model time reaches `t`.
    pub fn wall_at(&self, t: Ms) -> tokio::time::Instant {
        let ms = ((t - self.model_start).0.max(0) as f64 / self.speed).max(0.0);
        self.wall_start + Duration::from_micros((ms * 1000.0) as u64)
    }
}

/// The cabinet's field I/O: detector inputs and signal-head outputs. A real cabinet implements
/// it with hardware; tests and demos with the simulator.
pub trait FieldIo: Send {
    /// Occupancy of every detector (indexed like the intersection's detectors) at `now`.
    fn detectors(&mut self, now: Ms) -> Vec<bool>;
    /// Drive the signal heads.
    fn drive(&mut self, now: Ms, colours: &[Colour]);
}

/// One intersection of any [`intersections::field::Field`] (the simulator, or hardware I/O
/// written to that interface) as a cabinet's field I/O.
pub struct FieldPort<F: intersections::field::Field + Send> {
    pub field: F,
    pub intersection: intersections::IntersectionIdx,
}

impl<F: intersections::field::Field + Send> FieldIo for FieldPort<F> {
    fn detectors(&mut self, _now: Ms) -> Vec<bool> {
        self.field
            .measurements(self.intersection)
            .detectors
            .iter()
            .map(|d| d.occupied)
            .collect()
    }
    fn drive(&mut self, _now: Ms, colours: &[Colour]) {
        self.field.set_colours(self.intersection, colours);
    }
}

/// A cabinet with no field wiring (bench and demo): no detector calls, outputs logged.
pub struct NoField {
    pub detectors: usize,
}

impl FieldIo for NoField {
    fn detectors(&mut self, _now: Ms) -> Vec<bool> {
        vec![false; self.detectors]
    }
    fn drive(&mut self, _now: Ms, _colours: &[Colour]) {}
}

/// What the signal loop hands the MQTT side.
#[derive(Debug)]
enum ToMqtt {
    Publish {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
    Report(Vec<u8>),
}

/// Counters for the bench and tests.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub ticks: u64,
    /// Largest lateness of a tick against its scheduled model time, ms.
    pub max_late_ms: i64,
    pub reports_sent: u64,
    pub connected: bool,
}

fn mqtt_options(cfg: &CabinetConfig, will: Vec<u8>) -> anyhow::Result<MqttOptions> {
    let id = cfg
        .broker
        .client_id
        .clone()
        .unwrap_or_else(|| format!("greenwave-{}-{}", cfg.region, cfg.intersection));
    let mut o = MqttOptions::new(id, cfg.broker.host.clone(), cfg.broker.port);
    o.set_keep_alive(Duration::from_secs(cfg.broker.keep_alive_s.max(5)));
    o.set_last_will(LastWill::new(
        topic(&cfg.region, &cfg.intersection, "status"),
        will,
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &cfg.broker.username {
        let pass = match &cfg.broker.password_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?
                .trim()
                .to_string(),
            None => String::new(),
        };
        o.set_credentials(user.clone(), pass);
    }
    if let Some(ca) = &cfg.broker.ca_file {
        let ca = std::fs::read(ca).map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?;
        let client_auth = match (&cfg.broker.cert_file, &cfg.broker.key_file) {
            (Some(c), Some(k)) => Some((std::fs::read(c)?, std::fs::read(k)?)),
            _ => None,
        };
        o.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        }));
    }
    Ok(o)
}

/// Run the cabinet until `shutdown` turns true. `stats` is updated as it runs.
pub async fn run(
    cfg: CabinetConfig,
    mut cabinet: Cabinet,
    mut field: Box<dyn FieldIo>,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<Mutex<Stats>>,
) -> anyhow::Result<()> {
    let now = clock.now();
    let will = serde_json::to_vec(&cabinet.status(now, false))?;
    let (client, mut eventloop) = AsyncClient::new(mqtt_options(&cfg, will)?, 256);
    let queue = DiskQueue::open(&cfg.data_dir.join("reports"), cfg.buffer_max_reports)?;
    let (to_mqtt, from_loop) = mpsc::channel::<ToMqtt>(1024);
    let (to_loop, mut from_mqtt) = mpsc::channel::<(String, Vec<u8>)>(64);
    let (ev_tx, ev_rx) = mpsc::channel::<Result<Event, String>>(256);

    // Task 1: drive the MQTT connection (rumqttc reconnects on the next poll after an error).
    let mut sd1 = shutdown.clone();
    let poller = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = sd1.changed() => break,
                ev = eventloop.poll() => {
                    let failed = ev.is_err();
                    if ev_tx.send(ev.map_err(|e| e.to_string())).await.is_err() {
                        break;
                    }
                    if failed {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    });

    // Task 2: the MQTT side of the cabinet: subscriptions, publishing, the report queue.
    let sd2 = shutdown.clone();
    let link = tokio::spawn(mqtt_link(
        cfg.clone(),
        client.clone(),
        queue,
        from_loop,
        ev_rx,
        to_loop,
        sd2,
        stats.clone(),
    ));

    let status_topic = topic(&cfg.region, &cfg.intersection, "status");
    let events_topic = topic(&cfg.region, &cfg.intersection, "events");
    let ack_topic = topic(&cfg.region, &cfg.intersection, "plan/ack");
    let plan_topic = topic(&cfg.region, &cfg.intersection, "plan");
    let command_topic = topic(&cfg.region, &cfg.intersection, "command");

    let mut next = clock.now();
    loop {
        let wall = clock.wall_at(next);
        tokio::select! {
            _ = shutdown.changed() => break,
            msg = from_mqtt.recv() => {
                let Some((t, payload)) = msg else { continue };
                let now = clock.now();
                if t == plan_topic {
                    if let Some(ack) = cabinet.on_plan(now, &payload) {
                        let _ = to_mqtt.try_send(ToMqtt::Publish { topic: ack_topic.clone(), payload: serde_json::to_vec(&ack)?, retain: false });
                    }
                } else if t == command_topic {
                    if let Err(e) = cabinet.on_command(now, &payload) {
                        tracing::warn!(error = %e, "command refused");
                    }
                }
                next = now; // run the cabinet at once (`now` is past every earlier tick)
            }
            _ = tokio::time::sleep_until(wall) => {
                // The tick runs at its scheduled model time, not at the moment the task woke:
                // wake-up jitter then delays every change alike and never shortens an interval
                // (a late start of a yellow would otherwise make the yellow look short).
                let late = clock.now() - next;
                let now = next;
                let inputs = field.detectors(now);
                let (colours, out) = cabinet.tick(now, &inputs);
                field.drive(now, &colours);
                for o in out {
                    let m = match o {
                        Outgoing::Report(r) => ToMqtt::Report(serde_json::to_vec(&r)?),
                        Outgoing::Status(s) => ToMqtt::Publish { topic: status_topic.clone(), payload: serde_json::to_vec(&s)?, retain: true },
                        Outgoing::Events(e) => ToMqtt::Publish { topic: events_topic.clone(), payload: serde_json::to_vec(&e)?, retain: false },
                        Outgoing::Ack(a) => ToMqtt::Publish { topic: ack_topic.clone(), payload: serde_json::to_vec(&a)?, retain: false },
                    };
                    if let Err(e) = to_mqtt.try_send(m) {
                        tracing::warn!(error = %e, "MQTT side is not keeping up: message dropped (reports are kept on disk)");
                    }
                }
                {
                    let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                    s.ticks += 1;
                    s.max_late_ms = s.max_late_ms.max(late.0);
                }
                next = cabinet.next_wake(now);
            }
        }
    }
    // Say goodbye: offline status, retained.
    let bye = serde_json::to_vec(&cabinet.status(clock.now(), false))?;
    let _ = client.try_publish(status_topic, QoS::AtLeastOnce, true, bye);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), link).await;
    poller.abort();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn mqtt_link(
    cfg: CabinetConfig,
    client: AsyncClient,
    mut queue: DiskQueue,
    mut from_loop: mpsc::Receiver<ToMqtt>,
    mut events: mpsc::Receiver<Result<Event, String>>,
    to_loop: mpsc::Sender<(String, Vec<u8>)>,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<Mutex<Stats>>,
) {
    let plan_topic = topic(&cfg.region, &cfg.intersection, "plan");
    let command_topic = topic(&cfg.region, &cfg.intersection, "command");
    let detectors_topic = topic(&cfg.region, &cfg.intersection, "detectors");
    let mut connected = false;
    // Packet ids of our publishes, in the order the event loop reports them; true = report.
    let mut sent_kinds: std::collections::VecDeque<bool> = std::collections::VecDeque::new();
    let mut report_in_flight: Option<u16> = None;
    let mut report_waiting_pkid = false;
    // A report not acknowledged within this time is sent again (the optimizer drops the
    // duplicate by `seq`); it guards against a packet id lost in a reconnect.
    let resend_after = Duration::from_secs(5);
    let mut report_sent_at = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
            m = from_loop.recv() => match m {
                None => break,
                Some(ToMqtt::Report(p)) => {
                    match queue.push(&String::from_utf8_lossy(&p)) {
                        Ok(true) => tracing::warn!(dropped = queue.dropped(), "report buffer full: dropped the oldest report"),
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "cannot write the report buffer"),
                    }
                }
                Some(ToMqtt::Publish { topic, payload, retain }) => {
                    if connected && client.try_publish(topic, QoS::AtLeastOnce, retain, payload).is_ok() {
                        sent_kinds.push_back(false);
                    }
                }
            },
            ev = events.recv() => match ev {
                None => break,
                Some(Err(e)) => {
                    if connected {
                        tracing::warn!(error = %e, "broker connection lost; reports are buffered on disk");
                    }
                    connected = false;
                    sent_kinds.clear();
                    report_in_flight = None;
                    report_waiting_pkid = false;
                }
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    tracing::info!(host = %cfg.broker.host, port = cfg.broker.port, buffered = queue.len(), "connected to the broker");
                    connected = true;
                    sent_kinds.clear();
                    report_in_flight = None;
                    report_waiting_pkid = false;
                    let _ = client.try_subscribe(plan_topic.clone(), QoS::AtLeastOnce);
                    let _ = client.try_subscribe(command_topic.clone(), QoS::AtLeastOnce);
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    if to_loop.try_send((p.topic.clone(), p.payload.to_vec())).is_err() {
                        tracing::warn!(topic = %p.topic, "signal loop busy: message dropped");
                    }
                }
                Some(Ok(Event::Outgoing(MqttOut::Publish(pkid)))) => {
                    if let Some(is_report) = sent_kinds.pop_front() {
                        if is_report && report_waiting_pkid {
                            report_in_flight = Some(pkid);
                            report_waiting_pkid = false;
                        }
                    }
                }
                Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    if report_in_flight == Some(ack.pkid) {
                        report_in_flight = None;
                        if let Err(e) = queue.pop() {
                            tracing::error!(error = %e, "cannot update the report buffer");
                        }
                        let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                        s.reports_sent += 1;
                    }
                }
                Some(Ok(_)) => {}
            },
        }
        {
            let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
            s.connected = connected;
        }
        if (report_in_flight.is_some() || report_waiting_pkid)
            && report_sent_at.elapsed() > resend_after
        {
            report_in_flight = None;
            report_waiting_pkid = false;
        }
        // One report in flight at a time, oldest first.
        if connected && report_in_flight.is_none() && !report_waiting_pkid {
            if let Some(front) = queue.front() {
                if client
                    .try_publish(
                        detectors_topic.clone(),
                        QoS::AtLeastOnce,
                        false,
                        front.as_bytes().to_vec(),
                    )
                    .is_ok()
                {
                    sent_kinds.push_back(true);
                    report_waiting_pkid = true;
                    report_sent_at = tokio::time::Instant::now();
                }
            }
        }
    }
}
