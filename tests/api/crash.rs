//! Crashes: the service is killed with SIGKILL at random moments while a client sends payouts,
//! withdrawals and reviews, and restarted each time. Nothing the service acknowledged may be lost,
//! nothing may be applied twice, both chains must verify, and every e-mail and webhook of the
//! outboxes must reach its receiver, each under its one id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hashgate::db::Backend;
use rand::Rng;
use serde_json::{json, Value};

use crate::common::{free_port, sql_count, TestApp};
use crate::monitoring::Receiver;
use crate::smtp::SmtpServer;
use crate::withdrawals::{beneficiary, btc, btc_with_beneficiary, setup, verified_user, ADDRESS};

/// The client sends at least this many rounds, and goes on until the service was killed
/// `KILLS` times.
const ROUNDS: usize = 60;
const KILLS: usize = 6;

/// What the client was told: payouts, withdrawals and reviews the service acknowledged.
#[derive(Default)]
struct Acknowledged {
    payouts: BTreeSet<String>,
    /// Idempotency key → (withdrawal id, decision).
    withdrawals: BTreeMap<String, (String, String)>,
    rejected: BTreeSet<String>,
    retries: usize,
}

/// Sends one request until the service answers it (it may be down or restarting), always with
/// the same body and idempotency key.
fn until_answered(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    body: &Value,
    key: &str,
    retries: &mut usize,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = agent
            .post(url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Idempotency-Key", key)
            .send_json(body);
        match sent {
            Ok(mut response) if response.status().as_u16() != 503 => {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                return (status, serde_json::from_str(&text).unwrap_or(Value::Null));
            }
            _ => {
                *retries += 1;
                assert!(
                    Instant::now() < deadline,
                    "{url} got no answer for a minute"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn a_service_killed_at_random_loses_nothing_and_applies_nothing_twice() {
    let app = TestApp::spawn(Backend::Sqlite);
    let setup = setup(&app);
    // Users verified and paid through the test's own server: their KYC decisions and address
    // approvals are already in the e-mail outbox.
    let users: Vec<String> = (0..3).map(|_| verified_user(&app, &setup, "5")).collect();

    let smtp = SmtpServer::start();
    let receiver = Receiver::start(false);
    let settings = [
        ("HASHGATE_SMTP_HOST", "127.0.0.1".to_string()),
        ("HASHGATE_SMTP_PORT", smtp.port.to_string()),
        ("HASHGATE_SMTP_TLS", "none".to_string()),
        // A sender killed mid-delivery holds its message this long before another retries it.
        ("HASHGATE_OUTBOX_LEASE_SECONDS", "30".to_string()),
        ("HASHGATE_WEBHOOK_URL", receiver.url.clone()),
        (
            "HASHGATE_WEBHOOK_SECRET",
            "whsec-crash-0123456789abcdef0123456789".to_string(),
        ),
    ];
    let port = free_port();
    let log = app.directory().join("service.log");
    let mut service = Some(app.serve_child(port, &settings, &log));
    let base = format!("http://127.0.0.1:{port}");

    let kills_done = AtomicBool::new(false);
    let acknowledged = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let mut seen = Acknowledged::default();
            let mut retries = 0;
            let mut round = 0;
            while round < ROUNDS || !kills_done.load(Ordering::SeqCst) {
                round += 1;
                let user = &users[round % users.len()];
                match round % 3 {
                    0 => {
                        let ids: Vec<String> =
                            (0..20).map(|n| format!("crash-{round}-{n}")).collect();
                        let batch: Vec<Value> = ids
                            .iter()
                            .map(|id| {
                                json!({
                                    "user_id": user, "asset": "BTC", "amount": "0.0001",
                                    "occurred_at": "2026-12-01T08:00:00Z", "order_id": "o-1",
                                    "facility_id": "qc-1", "external_id": id
                                })
                            })
                            .collect();
                        let (status, body) = until_answered(
                            &agent,
                            &format!("{base}/v1/payouts"),
                            &setup.platform,
                            &json!({ "payouts": batch }),
                            &format!("payouts-{round}"),
                            &mut retries,
                        );
                        assert!((200..300).contains(&status), "{status} {body}");
                        seen.payouts.extend(ids);
                    }
                    1 => {
                        let key = format!("withdrawal-{round}");
                        let (status, body) = until_answered(
                            &agent,
                            &format!("{base}/v1/withdrawals"),
                            &setup.platform,
                            &btc(user, "0.001", ADDRESS),
                            &key,
                            &mut retries,
                        );
                        assert!((200..300).contains(&status), "{status} {body}");
                        let answer = (
                            body["id"].as_str().unwrap().to_string(),
                            body["decision"].as_str().unwrap().to_string(),
                        );
                        seen.withdrawals.insert(key, answer);
                    }
                    _ => {
                        // A large withdrawal is held; the officer rejects it: a webhook and an
                        // e-mail each.
                        let key = format!("large-{round}");
                        let large = btc_with_beneficiary(user, "0.2");
                        let (status, body) = until_answered(
                            &agent,
                            &format!("{base}/v1/withdrawals"),
                            &setup.platform,
                            &large,
                            &key,
                            &mut retries,
                        );
                        assert!((200..300).contains(&status), "{status} {body}");
                        assert_eq!(body["decision"], "held", "{body}");
                        let id = body["id"].as_str().unwrap().to_string();
                        seen.withdrawals
                            .insert(key.clone(), (id.clone(), "held".to_string()));
                        let (status, body) = until_answered(
                            &agent,
                            &format!("{base}/v1/withdrawals/{id}/reject"),
                            &setup.officer,
                            &json!({"reason": "beneficiary could not be verified"}),
                            &format!("reject-{round}"),
                            &mut retries,
                        );
                        assert!((200..300).contains(&status), "{status} {body}");
                        seen.rejected.insert(id);
                    }
                }
            }
            seen.retries = retries;
            seen
        });

        // Meanwhile: SIGKILL at random moments, and a restart on the same port each time.
        let mut rng = rand::thread_rng();
        for _ in 0..KILLS {
            std::thread::sleep(Duration::from_millis(rng.gen_range(100..500)));
            drop(service.take());
            service = Some(app.serve_child(port, &settings, &log));
        }
        kills_done.store(true, Ordering::SeqCst);
        client.join().unwrap()
    });
    assert!(acknowledged.retries > 0, "no request met a dead service");

    // Nothing acknowledged was lost, nothing was applied twice.
    let count = |sql: &str| sql_count(&app, sql);
    assert_eq!(
        count("SELECT COUNT(*) FROM ledger_entries WHERE external_id LIKE 'crash-%'"),
        acknowledged.payouts.len().to_string()
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT external_id) FROM ledger_entries WHERE external_id LIKE 'crash-%'"),
        acknowledged.payouts.len().to_string()
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM withdrawals"),
        acknowledged.withdrawals.len().to_string(),
        "one withdrawal per idempotency key"
    );
    for id in &acknowledged.rejected {
        assert_eq!(
            app.query_text(&format!(
                "SELECT status AS value FROM withdrawals WHERE id = '{id}'"
            )),
            vec!["rejected"]
        );
    }
    // A retry after the crashes gets the decision first given (the idempotency record is in the
    // database, so the test's own server answers it).
    for (key, (id, decision)) in acknowledged.withdrawals.iter().take(5) {
        let round: usize = key.rsplit('-').next().unwrap().parse().unwrap();
        let user = &users[round % users.len()];
        let mut body = btc(
            user,
            if key.starts_with("large") {
                "0.2"
            } else {
                "0.001"
            },
            ADDRESS,
        );
        if key.starts_with("large") {
            body["beneficiary"] = beneficiary();
        }
        let replay = app.post_with(
            "/v1/withdrawals",
            Some(&setup.platform),
            &body,
            &[("Idempotency-Key", key)],
        );
        assert_eq!(replay.json()["id"], id.as_str(), "{}", replay.body);
        assert_eq!(replay.json()["decision"], decision.as_str());
    }

    // Every e-mail and webhook in the outboxes reaches its receiver, each under its own id. A
    // message leased by a killed sender waits for its lease (30 s here) to run out.
    let draining = Instant::now();
    let deadline = draining + Duration::from_secs(180);
    loop {
        let pending = count("SELECT COUNT(*) FROM email_outbox WHERE status <> 'sent'")
            + "/"
            + &count("SELECT COUNT(*) FROM webhook_outbox WHERE status <> 'delivered'");
        if pending == "0/0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still pending (e-mail/webhooks): {pending}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(service);
    eprintln!(
        "crash test: {KILLS} kills, {} retried requests, {} payouts and {} withdrawals \
         acknowledged; outboxes drained in {:.1} s",
        acknowledged.retries,
        acknowledged.payouts.len(),
        acknowledged.withdrawals.len(),
        draining.elapsed().as_secs_f64()
    );
    let emails: Vec<String> = smtp
        .received()
        .iter()
        .filter_map(|mail| mail.header("Message-ID"))
        .collect();
    let distinct_emails: BTreeSet<&String> = emails.iter().collect();
    assert_eq!(
        distinct_emails.len().to_string(),
        count("SELECT COUNT(*) FROM email_outbox"),
        "every queued e-mail arrived"
    );
    let webhooks: Vec<String> = receiver
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(headers, _)| {
            headers
                .iter()
                .find(|(name, _)| name == "hashgate-delivery")
                .map(|(_, id)| id.clone())
        })
        .collect();
    let distinct_webhooks: BTreeSet<&String> = webhooks.iter().collect();
    assert_eq!(
        distinct_webhooks.len().to_string(),
        count("SELECT COUNT(*) FROM webhook_outbox"),
        "every queued webhook arrived"
    );
    assert!(!webhooks.is_empty() && !emails.is_empty());
    eprintln!(
        "crash test: {} e-mails ({} distinct), {} webhooks ({} distinct)",
        emails.len(),
        distinct_emails.len(),
        webhooks.len(),
        distinct_webhooks.len()
    );
    // A message sent just before a kill, and not yet marked sent, is sent again under the same id
    // (receivers drop it by Message-ID or Hashgate-Delivery): at most one per kill.
    assert!(emails.len() - distinct_emails.len() <= KILLS, "{emails:?}");
    assert!(
        webhooks.len() - distinct_webhooks.len() <= KILLS,
        "{webhooks:?}"
    );

    let verify = app.command(&["verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("panicked"), "{logged}");
}
