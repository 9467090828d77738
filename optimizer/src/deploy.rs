//! Deployment of plans to controllers, one coordination group at a time: sign (Ed25519),
//! publish retained on each intersection's `plan` topic, collect acks, retry, and roll the
//! whole group back when any controller refuses its plan (a coordination group only works
//! when all its members run the same cycle).
//!
//! Pure logic: every call takes `now` and returns the messages to publish; the MQTT shell
//! publishes them. Plan versions rise monotonically per intersection (controllers refuse
//! anything not newer), so a rollback re-sends the previous plan under a new version; a
//! member that had no centre plan before is sent a signed `rollback` command, which returns it
//! to its local time-of-day plans.
//!
//! A deployment carries how the cabinets run its plans ([`Operation`]): coordinated, or
//! isolated actuated with a maximum green factor and a passage time. A coordinated deployment
//! leaves the field out (the cabinet's default), so cabinets from before the field accept it
//! as before; a rollback re-sends the previous plan with its operation.
//!
//! The engineer console reuses the same machinery: [`Deployer::roll_back_group`] sends a group
//! back to what it ran before its last acknowledged deployment, and [`Deployer::command`] signs
//! a manual command with the one command sequence of this centre key.

use std::collections::BTreeMap;

use intersections::messages::{
    topic, Command, CommandAction, Operation, PlanAck, PlanDeployment, WIRE_VERSION,
};
use intersections::signing::Signer25519;
use intersections::spec::PlanSpec;
use intersections::Ms;

/// How long a deployment may wait for an ack before it is sent again.
pub const ACK_TIMEOUT: Ms = Ms(30_000);
/// Sends before a silent controller makes the group roll back.
pub const MAX_SENDS: u32 = 3;
/// How long a deployment stays valid at a controller.
pub const VALIDITY: Ms = Ms(24 * 3_600_000);
/// How long the rollback command of a group rollback stays valid (held up in the network
/// longer, the controller refuses it).
pub const COMMAND_VALIDITY: Ms = Ms(600_000);
/// Acknowledged deployments remembered per group, for rollbacks one step at a time.
pub const HISTORY: usize = 20;

/// A message to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// How a group deployment ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// Every member acknowledged.
    Deployed,
    /// A member refused or stayed silent; the group went back to what it ran before.
    RolledBack {
        intersection: String,
        reasons: Vec<String>,
    },
    /// An operator sent the group back to what it ran before (the console's rollback).
    Reverted { operator: String },
    /// A member refused the plan it was sent back to, or stayed silent through every send:
    /// the group may not run one cycle; an engineer must look (the plan stays retained for
    /// the member, so it takes it when it can).
    RollbackUnconfirmed {
        intersection: String,
        reasons: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Member {
    intersection: String,
    deployment: PlanDeployment,
    previous: Option<PlanDeployment>,
    acked: Option<bool>,
    sends: u32,
    last_sent: Ms,
}

/// What an unacknowledged send calls for at some time ([`Member::due`]).
enum Due {
    Wait,
    /// Send it again (counted).
    Resend,
    /// Sent [`MAX_SENDS`] times without an answer.
    GiveUp,
}

impl Member {
    /// Whether its plan is due again at `now`: not yet, again (the send counted), or given up.
    fn due(&mut self, now: Ms) -> Due {
        if now - self.last_sent < ACK_TIMEOUT {
            Due::Wait
        } else if self.sends >= MAX_SENDS {
            Due::GiveUp
        } else {
            self.sends += 1;
            self.last_sent = now;
            Due::Resend
        }
    }
}

/// A deployment as it is published: retained on its intersection's `plan` topic.
fn plan_publish(region: &str, d: &PlanDeployment) -> Publish {
    Publish {
        topic: topic(region, &d.intersection, "plan"),
        payload: serde_json::to_vec(d).unwrap_or_default(),
        retain: true,
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct GroupDeployment {
    members: Vec<Member>,
}

/// What a deployer keeps across restarts: the plan each intersection acknowledged, and each
/// group's acknowledged deployments (what a rollback returns to). Deployments still waiting
/// for acks are not kept: after a restart their outcome is unknown.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Durable {
    in_force: BTreeMap<String, PlanDeployment>,
    history: BTreeMap<String, Vec<GroupDeployment>>,
}

/// The centre's side of plan deployment for one region.
pub struct Deployer {
    region: String,
    signer: Signer25519,
    /// Last version sent per intersection.
    versions: BTreeMap<String, u64>,
    /// The deployment each intersection acknowledged last.
    in_force: BTreeMap<String, PlanDeployment>,
    groups: BTreeMap<String, GroupDeployment>,
    /// Acknowledged deployments per group, newest last (at most [`HISTORY`]).
    history: BTreeMap<String, Vec<GroupDeployment>>,
    command_seq: u64,
    /// Finished deployments, for the console and the audit log.
    pub finished: Vec<(String, Ms, Outcome)>,
    /// Plans sent back by a rollback, by group, until their member acknowledges them:
    /// re-sent like a deployment's, and an outcome of their own when refused or unanswered.
    restoring: Vec<(String, Member)>,
}

impl Deployer {
    /// `first_version` must be above any version ever sent by this region's key (persist it,
    /// or start from the current Unix time in milliseconds).
    pub fn new(region: &str, signer: Signer25519, first_version: u64) -> Self {
        Deployer {
            region: region.into(),
            signer,
            versions: BTreeMap::new(),
            in_force: BTreeMap::new(),
            groups: BTreeMap::new(),
            history: BTreeMap::new(),
            command_seq: first_version,
            finished: Vec::new(),
            restoring: Vec::new(),
        }
    }

    fn next_version(&mut self, intersection: &str) -> u64 {
        let floor = self.command_seq;
        let v = self.versions.entry(intersection.into()).or_insert(floor);
        *v += 1;
        *v
    }

    fn sign_plan(
        &mut self,
        now: Ms,
        intersection: &str,
        plan: PlanSpec,
        operation: &Operation,
    ) -> PlanDeployment {
        let mut d = PlanDeployment {
            version: WIRE_VERSION,
            region: self.region.clone(),
            intersection: intersection.into(),
            plan_version: self.next_version(intersection),
            issued_at_ms: now.0,
            expires_at_ms: (now + VALIDITY).0,
            not_before_ms: now.0,
            plan,
            // Coordinated is the default and left out (see the module documentation).
            operation: match operation {
                Operation::Coordinated => None,
                op => Some(op.clone()),
            },
            key_id: String::new(),
            signature: String::new(),
        };
        self.signer.sign(&mut d);
        d
    }

    fn publish_plan(&self, d: &PlanDeployment) -> Publish {
        plan_publish(&self.region, d)
    }

    /// Whether a group deployment is still waiting for acks.
    pub fn busy(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// Deploy checked plans (one per member intersection) to a coordination group, run
    /// coordinated. A group with a deployment under way is refused.
    pub fn deploy(
        &mut self,
        now: Ms,
        group: &str,
        plans: Vec<(String, PlanSpec)>,
    ) -> Result<Vec<Publish>, String> {
        self.deploy_operation(now, group, plans, &Operation::Coordinated)
    }

    /// Deploy checked plans to a coordination group, every member to run them as `operation`
    /// says. A group with a deployment under way is refused, and so is an operation outside
    /// the limits the cabinets enforce.
    pub fn deploy_operation(
        &mut self,
        now: Ms,
        group: &str,
        plans: Vec<(String, PlanSpec)>,
        operation: &Operation,
    ) -> Result<Vec<Publish>, String> {
        let problems = operation.problems("operation");
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        if self.busy(group) {
            return Err(format!("group {group:?} is still deploying"));
        }
        let mut out = Vec::new();
        let mut members = Vec::new();
        for (ix, plan) in plans {
            let d = self.sign_plan(now, &ix, plan, operation);
            out.push(self.publish_plan(&d));
            members.push(Member {
                previous: self.in_force.get(&ix).cloned(),
                intersection: ix,
                deployment: d,
                acked: None,
                sends: 1,
                last_sent: now,
            });
        }
        self.groups
            .insert(group.into(), GroupDeployment { members });
        Ok(out)
    }

    /// A payload from a `plan/ack` topic.
    pub fn on_ack(&mut self, now: Ms, payload: &[u8]) -> Vec<Publish> {
        let Ok(ack) = serde_json::from_slice::<PlanAck>(payload) else {
            tracing::warn!("plan/ack: not a plan ack; ignored");
            return Vec::new();
        };
        let Some((group, m)) = self.groups.iter_mut().find_map(|(g, gd)| {
            gd.members
                .iter_mut()
                .find(|m| {
                    m.intersection == ack.intersection
                        && m.deployment.plan_version == ack.plan_version
                })
                .map(|m| (g.clone(), m))
        }) else {
            self.on_restore_ack(now, &ack);
            return Vec::new(); // an ack for something no longer pending
        };
        m.acked = Some(ack.accepted);
        if ack.accepted {
            self.in_force
                .insert(m.intersection.clone(), m.deployment.clone());
            let done = self.groups[&group]
                .members
                .iter()
                .all(|m| m.acked == Some(true));
            if done {
                if let Some(gd) = self.groups.remove(&group) {
                    let h = self.history.entry(group.clone()).or_default();
                    h.push(gd);
                    if h.len() > HISTORY {
                        h.remove(0);
                    }
                }
                self.finished.push((group, now, Outcome::Deployed));
            }
            Vec::new()
        } else {
            let who = m.intersection.clone();
            self.roll_back(now, &group, who, ack.reasons)
        }
    }

    /// An ack of a plan a rollback sent: confirmed, or the rollback is unconfirmed.
    fn on_restore_ack(&mut self, now: Ms, ack: &PlanAck) {
        let Some(k) = self.restoring.iter().position(|(_, m)| {
            m.intersection == ack.intersection && m.deployment.plan_version == ack.plan_version
        }) else {
            return;
        };
        let (group, m) = self.restoring.remove(k);
        if ack.accepted {
            tracing::info!(group = %group, intersection = %m.intersection, "rollback acknowledged");
        } else {
            self.rollback_unconfirmed(now, group, m.intersection, ack.reasons.clone());
        }
    }

    /// A plan a rollback sent back was refused or never answered: the group's outcome.
    fn rollback_unconfirmed(
        &mut self,
        now: Ms,
        group: String,
        intersection: String,
        reasons: Vec<String>,
    ) {
        tracing::error!(group = %group, intersection = %intersection, ?reasons, "the plan a rollback sent back is not acknowledged");
        self.finished.push((
            group,
            now,
            Outcome::RollbackUnconfirmed {
                intersection,
                reasons,
            },
        ));
    }

    /// Resend what is not acknowledged in time; roll back a group whose member stays silent.
    /// A plan a rollback sent is re-sent the same way; silent through every send, the
    /// rollback is unconfirmed.
    pub fn tick(&mut self, now: Ms) -> Vec<Publish> {
        let mut out = Vec::new();
        let mut gave_up = Vec::new();
        for (k, (_, m)) in self.restoring.iter_mut().enumerate() {
            match m.due(now) {
                Due::Wait => {}
                Due::Resend => out.push(plan_publish(&self.region, &m.deployment)),
                Due::GiveUp => gave_up.push(k),
            }
        }
        for k in gave_up.into_iter().rev() {
            let (group, m) = self.restoring.remove(k);
            let why = vec![format!("no ack after {MAX_SENDS} sends of the rollback")];
            self.rollback_unconfirmed(now, group, m.intersection, why);
        }
        let mut silent = Vec::new();
        for (g, gd) in self.groups.iter_mut() {
            for m in gd.members.iter_mut().filter(|m| m.acked.is_none()) {
                match m.due(now) {
                    Due::Wait => {}
                    Due::Resend => out.push(plan_publish(&self.region, &m.deployment)),
                    Due::GiveUp => silent.push((g.clone(), m.intersection.clone())),
                }
            }
        }
        for (g, ix) in silent {
            if self.groups.contains_key(&g) {
                out.extend(self.roll_back(
                    now,
                    &g,
                    ix,
                    vec![format!("no ack after {MAX_SENDS} sends")],
                ));
            }
        }
        out
    }

    fn roll_back(
        &mut self,
        now: Ms,
        group: &str,
        who: String,
        reasons: Vec<String>,
    ) -> Vec<Publish> {
        let Some(gd) = self.groups.remove(group) else {
            return Vec::new();
        };
        tracing::warn!(group, intersection = %who, ?reasons, "deployment refused: rolling the group back");
        let out = self.restore(now, group, gd, "optimizer (rollback)");
        self.finished.push((
            group.into(),
            now,
            Outcome::RolledBack {
                intersection: who,
                reasons,
            },
        ));
        out
    }

    /// Send every member of a group deployment back to what it ran before it.
    fn restore(
        &mut self,
        now: Ms,
        group: &str,
        gd: GroupDeployment,
        operator: &str,
    ) -> Vec<Publish> {
        let mut out = Vec::new();
        // A rollback supersedes what an earlier one of the group still waits for.
        self.restoring.retain(|(g, _)| g != group);
        for m in gd.members {
            // Members that never took the new plan need nothing, but their retained message
            // must not deliver it later: re-publish what should run for everyone.
            match m.previous {
                Some(prev) => {
                    let d =
                        self.sign_plan(now, &m.intersection, prev.plan.clone(), &prev.operation());
                    out.push(self.publish_plan(&d));
                    self.in_force.insert(m.intersection.clone(), d.clone());
                    self.restoring.push((
                        group.to_string(),
                        Member {
                            intersection: m.intersection.clone(),
                            deployment: d,
                            previous: None,
                            acked: None,
                            sends: 1,
                            last_sent: now,
                        },
                    ));
                }
                None => {
                    self.in_force.remove(&m.intersection);
                    // Clear the retained plan and send the member back to its local plans.
                    out.push(Publish {
                        topic: topic(&self.region, &m.intersection, "plan"),
                        payload: Vec::new(),
                        retain: true,
                    });
                    let (_, p) = self.command(
                        now,
                        &m.intersection,
                        operator,
                        CommandAction::Rollback,
                        COMMAND_VALIDITY,
                    );
                    out.push(p);
                }
            }
        }
        out
    }

    /// The console's rollback: send a coordination group back to the plans it ran before its
    /// last acknowledged deployment (a deployment still waiting for acks is rolled back as on
    /// a refusal). Repeated, it steps further back through the group's history. Every member
    /// gets the previous plan under a new version, or its local plans where there was none.
    pub fn roll_back_group(
        &mut self,
        now: Ms,
        group: &str,
        operator: &str,
    ) -> Result<Vec<Publish>, String> {
        let gd = match self.groups.remove(group) {
            Some(gd) => gd,
            None => self
                .history
                .get_mut(group)
                .and_then(|h| h.pop())
                .ok_or_else(|| format!("group {group:?} has no centre deployment to roll back"))?,
        };
        tracing::warn!(group, operator, "rollback by an operator");
        let out = self.restore(now, group, gd, operator);
        self.finished.push((
            group.into(),
            now,
            Outcome::Reverted {
                operator: operator.into(),
            },
        ));
        Ok(out)
    }

    /// Sign a command for one intersection, valid for `validity`, with the next sequence
    /// number of this centre key (controllers refuse a sequence not above the last they
    /// accepted).
    pub fn command(
        &mut self,
        now: Ms,
        intersection: &str,
        operator: &str,
        action: CommandAction,
        validity: Ms,
    ) -> (Command, Publish) {
        self.command_seq += 1;
        let mut c = Command {
            version: WIRE_VERSION,
            region: self.region.clone(),
            intersection: intersection.into(),
            seq: self.command_seq,
            issued_at_ms: now.0,
            expires_at_ms: (now + validity).0,
            operator: operator.into(),
            action,
            key_id: String::new(),
            signature: String::new(),
        };
        self.signer.sign(&mut c);
        let p = Publish {
            topic: topic(&self.region, intersection, "command"),
            payload: serde_json::to_vec(&c).unwrap_or_default(),
            retain: false,
        };
        (c, p)
    }

    /// The plans each intersection acknowledged from the centre (after a rollback: the plan
    /// sent back). An intersection missing here runs its local plans.
    pub fn in_force(&self) -> BTreeMap<String, PlanSpec> {
        self.in_force
            .iter()
            .map(|(ix, d)| (ix.clone(), d.plan.clone()))
            .collect()
    }

    /// The deployments each intersection acknowledged from the centre (plan and operation).
    pub fn deployments_in_force(&self) -> &BTreeMap<String, PlanDeployment> {
        &self.in_force
    }

    /// What to keep across restarts.
    pub fn durable(&self) -> Durable {
        Durable {
            in_force: self.in_force.clone(),
            history: self.history.clone(),
        }
    }

    /// Take back what was kept (on start, before anything is deployed). Versions are not
    /// restored: the first version of a new deployer is above any sent before.
    pub fn resume(&mut self, d: Durable) {
        self.in_force = d.in_force;
        self.history = d.history;
    }

    /// Plans sent back by rollbacks that their members have not acknowledged yet.
    pub fn rollbacks_waiting(&self) -> usize {
        self.restoring.len()
    }

    /// The groups with a deployment waiting for acks.
    pub fn deploying(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Whether a group has an acknowledged deployment to roll back to before it.
    pub fn can_roll_back(&self, group: &str) -> bool {
        self.busy(group) || self.history.get(group).is_some_and(|h| !h.is_empty())
    }
}
