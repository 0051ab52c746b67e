//! Screening against the real OFAC SDN and UN lists from `../shared/data/sanctions`: list
//! versions, crypto addresses, name variants, weak tokens, and refused files.

use hashgate::auth::Role;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    every_sdn_crypto_address_is_found_exactly,
    sdn_names_are_found_through_their_variants,
    names_sharing_only_a_common_word_are_not_hits,
    a_truncated_or_corrupted_list_leaves_the_active_version,
    screening_is_for_officers_and_the_platform,
    a_dismissed_hit_stays_dismissed_until_its_entry_changes,
    uploaded_lists_rescreen_monitored_subjects_as_jobs,
    a_matcher_configuration_change_rescreens_everyone,
);

/// The workplace's shared sanctions data: `HASHGATE_SHARED_DATA` or `../shared/data` beside
/// the checkout.
pub fn sanctions_dir() -> String {
    let data = std::env::var("HASHGATE_SHARED_DATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data").to_string());
    let directory = format!("{data}/sanctions");
    assert!(
        std::path::Path::new(&directory).is_dir(),
        "{directory} is missing: check out hashgate beside ../shared or set HASHGATE_SHARED_DATA"
    );
    directory
}

fn import(app: &TestApp, source: &str, paths: &[&str]) -> std::process::Output {
    let mut arguments = vec!["lists", "import", "--source", source];
    arguments.extend_from_slice(paths);
    app.command(&arguments)
}

fn load_lists(app: &TestApp) {
    let sanctions = sanctions_dir();
    let ofac = format!("{sanctions}/ofac");
    let supplement = format!("{sanctions}/ofac-addresses/sdn_comments.csv");
    let output = import(app, "ofac-sdn", &[&ofac, &supplement]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("ofac-sdn version 1:"), "{printed}");
    let un = format!("{sanctions}/un/UN_consolidated.xml");
    let output = import(app, "un-consolidated", &[&un]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every `Digital Currency Address - XXX address` in the shared OFAC files, read independently
/// of the importer: each entry's Remarks joined with its extended remarks, then split.
fn listed_addresses() -> Vec<(String, String)> {
    let sanctions = sanctions_dir();
    let mut remarks: std::collections::BTreeMap<String, String> = Default::default();
    let mut read = |file: &str, column: usize| {
        let bytes = std::fs::read(format!("{sanctions}/{file}")).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes.as_slice());
        for record in reader.records() {
            let record = record.unwrap();
            if record.len() > column {
                let text = remarks.entry(record[0].to_string()).or_default();
                text.push_str(record[column].trim());
            }
        }
    };
    read("ofac/sdn.csv", 11);
    read("ofac/sdn_comments.csv", 1);
    read("ofac-addresses/sdn_comments.csv", 1);
    let mut addresses = Vec::new();
    for text in remarks.values() {
        for piece in text.split("Digital Currency Address - ").skip(1) {
            let mut words = piece.split_whitespace();
            let currency = words.next().unwrap().to_string();
            let address = words.next().unwrap().trim_end_matches([';', '.']);
            addresses.push((currency, address.to_string()));
        }
    }
    addresses.sort();
    addresses.dedup();
    addresses
}

fn screen(app: &TestApp, token: &str, kind: &str, body: Value) -> Vec<Value> {
    let response = app.post(&format!("/v1/screening/{kind}"), Some(token), &body);
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["hits"].as_array().unwrap().clone()
}

/// A different character at the end of an address, of the same class.
fn one_character_changed(address: &str) -> String {
    let mut characters: Vec<char> = address.chars().collect();
    let last = characters.last_mut().unwrap();
    *last = match *last {
        '0'..='8' | 'a'..='y' | 'A'..='Y' => char::from(*last as u8 + 1),
        '9' => '8',
        'z' => 'y',
        _ => 'X',
    };
    characters.into_iter().collect()
}

fn every_sdn_crypto_address_is_found_exactly(app: &TestApp) {
    load_lists(app);
    let officer = app.token(Role::Officer, None, None);
    let addresses = listed_addresses();
    assert!(
        addresses.len() >= 400,
        "only {} addresses read",
        addresses.len()
    );
    for (currency, address) in &addresses {
        let hits = screen(app, &officer, "address", json!({ "address": address }));
        assert!(!hits.is_empty(), "{currency} {address} not found");
        for hit in &hits {
            assert_eq!(hit["score"], 1.0);
            assert_eq!(hit["source"], "ofac-sdn");
            assert_eq!(hit["matched_on"]["type"], "crypto_address");
            assert_eq!(hit["matched_on"]["address"], address.as_str());
        }
        // One address can be listed under several currencies (ETH and ETC); this one is among them.
        let listed_under = |hit: &Value| {
            hit["matched_on"]["currencies"]
                .as_array()
                .is_some_and(|currencies| currencies.contains(&json!(currency)))
        };
        assert!(
            hits.iter().any(listed_under),
            "{currency} {address}: {hits:?}"
        );
        let changed = one_character_changed(address);
        let hits = screen(app, &officer, "address", json!({ "address": changed }));
        assert!(
            hits.is_empty(),
            "{changed} (changed from {address}) matched {hits:?}"
        );
    }
}

fn sdn_names_are_found_through_their_variants(app: &TestApp) {
    load_lists(app);
    let platform = app.token(Role::Platform, None, None);
    // SDN 2685 is "NAJI, Talal Muhammad Rashid"; 7006 "AWEYS, Hassan Dahir" with the alias
    // "AWES, Shaykh Hassan Dahir".
    for (variant, entry) in [
        ("Talal Muhammad Rashid Naji", "2685"),
        ("Naji Talal Muhammad Rashid", "2685"),
        ("Talal Naji", "2685"),
        ("Talál Muhammad Rashíd Nají", "2685"),
        ("Talal Muhammad Rashid Nadji", "2685"),
        ("Hassan Dahir Awes", "7006"),
        ("Sheikh Hassan Dahir Aweys", "7006"),
    ] {
        let hits = screen(app, &platform, "person", json!({ "name": variant }));
        // The same person can be listed more than once (OFAC lists Aweys twice, the UN once).
        let hit = hits
            .iter()
            .find(|hit| hit["source"] == "ofac-sdn" && hit["entry_id"] == entry)
            .unwrap_or_else(|| panic!("{variant}: SDN {entry} not among {hits:?}"));
        let score = hit["score"].as_f64().unwrap();
        assert!(
            score >= hashgate::aml::DEFAULT_THRESHOLD,
            "{variant}: {score}"
        );
        let name = &hit["matched_on"];
        assert_eq!(name["type"], "name");
        assert!(!name["tokens"].as_array().unwrap().is_empty(), "{name}");
    }
    // A date of birth that disagrees with the listed one lowers the score, and says so.
    let hits = screen(
        app,
        &platform,
        "person",
        json!({ "name": "Talal Muhammad Rashid Naji", "date_of_birth": "1990-01-01" }),
    );
    let qualified = hits.iter().find(|hit| hit["entry_id"] == "2685");
    if let Some(hit) = qualified {
        let qualifiers = hit["qualifiers"].as_array().unwrap();
        assert!(
            qualifiers.iter().any(|q| q["factor"] == "date_of_birth"),
            "{hit}"
        );
        assert!(hit["score"].as_f64().unwrap() < 1.0);
    }

    // The in-process call KYC and withdrawals use: screened and stored in the caller's
    // transaction, and the subject monitored from then on.
    let screener = hashgate::aml::screener::Screener::default();
    let cipher =
        hashgate::crypto::FieldCipher::from_base64(app.settings.encryption_key.as_deref().unwrap())
            .unwrap();
    let mut connection = app.state_db.connection().unwrap();
    let stored = hashgate::db::write_transaction(&mut connection, |connection| {
        screener.screen(
            connection,
            &cipher,
            &hashgate::aml::screener::ScreeningRequest {
                subject: hashgate::aml::screener::Subject::Named {
                    kind: hashgate::aml::names::SubjectKind::Person,
                    query: hashgate::aml::matcher::SubjectQuery {
                        name: "Talal Naji".into(),
                        ..Default::default()
                    },
                },
                subject_ref: Some("kyc-applicant-1".into()),
                jurisdiction: Some("SG".into()),
                rules: hashgate::aml::DEFAULT_RULES,
            },
            &hashgate::audit::Actor::command_line(),
        )
    })
    .unwrap();
    drop(connection);
    assert!(stored.hits.iter().any(|hit| hit.hit.entry_id == "2685"));
    assert_eq!(
        app.query_text(
            "SELECT jurisdiction AS value FROM screening_subjects WHERE subject_ref = 'kyc-applicant-1'"
        ),
        vec!["SG"]
    );
}

fn names_sharing_only_a_common_word_are_not_hits(app: &TestApp) {
    load_lists(app);
    let officer = app.token(Role::Officer, None, None);
    for name in [
        "Golden Harvest Trading Co",
        "Blue River Trading Company Limited",
        "Northern Lights Holding Co., Ltd.",
        "Maple Leaf International Trading LLC",
    ] {
        let hits = screen(app, &officer, "entity", json!({ "name": name }));
        assert!(hits.is_empty(), "{name}: {hits:?}");
    }
    for name in ["Maria Schneider", "Thomas Anderson", "Wei Chen Lau"] {
        let hits = screen(app, &officer, "person", json!({ "name": name }));
        assert!(hits.is_empty(), "{name}: {hits:?}");
    }
}

fn a_truncated_or_corrupted_list_leaves_the_active_version(app: &TestApp) {
    let sanctions = sanctions_dir();
    load_lists(app);
    let sdn = std::fs::read(format!("{sanctions}/ofac/sdn.csv")).unwrap();
    let truncated = app.directory().join("sdn.csv");
    // Cut in the middle of a row.
    std::fs::write(&truncated, &sdn[..sdn.len() / 2 + 17]).unwrap();
    let output = import(app, "ofac-sdn", &[truncated.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sdn.csv line "), "{stderr}");
    // Cut at a line boundary: it parses, but would drop half the list.
    let boundary = sdn[..sdn.len() / 2]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    std::fs::write(&truncated, &sdn[..boundary]).unwrap();
    let output = import(app, "ofac-sdn", &[truncated.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("truncated download"), "{stderr}");
    // Corrupted XML.
    let xml = std::fs::read_to_string(format!("{sanctions}/un/UN_consolidated.xml")).unwrap();
    let corrupted = app.directory().join("un.xml");
    std::fs::write(
        &corrupted,
        xml.replacen("</INDIVIDUAL>", "</INDIVIDUALX>", 3),
    )
    .unwrap();
    let output = import(app, "un-consolidated", &[corrupted.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line "), "{stderr}");

    let admin = app.token(Role::Admin, None, None);
    let versions = app.get("/v1/lists", Some(&admin)).json();
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions.iter().all(|v| v["version"] == 1));
    let officer = app.token(Role::Officer, None, None);
    let hits = screen(
        app,
        &officer,
        "person",
        json!({ "name": "Talal Muhammad Rashid Naji" }),
    );
    assert_eq!(hits[0]["entry_id"], "2685", "{hits:?}");
}

fn screening_is_for_officers_and_the_platform(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let user_id = app.create_user(&platform, "screened-user");
    let user = app.token(Role::User, None, Some(&user_id));
    let response = app.post(
        "/v1/screening/person",
        Some(&user),
        &json!({ "name": "Anyone" }),
    );
    assert_eq!(response.status, 403, "{}", response.body);
    let regulator = app.token(Role::Regulator, Some("HK"), None);
    let response = app.post(
        "/v1/screening/address",
        Some(&regulator),
        &json!({ "address": "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h" }),
    );
    assert_eq!(response.status, 403);
    let response = app.post(
        "/v1/screening/person",
        Some(&platform),
        &json!({ "name": "", "nationality": "XX" }),
    );
    let fields = response.problem_fields(422);
    assert!(fields.contains(&"name".to_string()), "{fields:?}");
    assert!(fields.contains(&"nationality".to_string()), "{fields:?}");
}

fn hit_for<'a>(hits: &'a [Value], entry: &str) -> &'a Value {
    hits.iter()
        .find(|hit| hit["source"] == "ofac-sdn" && hit["entry_id"] == entry)
        .unwrap_or_else(|| panic!("SDN {entry} not among {hits:?}"))
}

fn alerts(app: &TestApp, token: &str, subject: &str) -> Vec<Value> {
    let response = app.get("/v1/screening/hits?status=open&alerts=true", Some(token));
    assert_eq!(response.status, 200, "{}", response.body);
    response
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|hit| hit["subject_ref"] == subject)
        .cloned()
        .collect()
}

fn a_dismissed_hit_stays_dismissed_until_its_entry_changes(app: &TestApp) {
    let sanctions = sanctions_dir();
    load_lists(app);
    let platform = app.token(Role::Platform, None, None);
    let officer = app.token(Role::Officer, None, None);
    let senior = app.token(Role::SeniorOfficer, None, None);
    let other_senior = app.token(Role::SeniorOfficer, None, None);
    let subject = app.create_user(&platform, "namesake");
    let screened = screen(
        app,
        &platform,
        "person",
        json!({ "name": "Talal Muhammad Rashid Naji", "subject_ref": subject, "jurisdiction": "HK" }),
    );
    let hit = hit_for(&screened, "2685");
    assert_eq!(hit["status"], "open");
    let hit_id = hit["id"].as_str().unwrap().to_string();

    // A score this high takes four eyes: the officer only proposes the dismissal.
    let review = |token: &str, body: Value| {
        app.post(
            &format!("/v1/screening/hits/{hit_id}/review"),
            Some(token),
            &body,
        )
    };
    let approval = |token: &str, body: Value| {
        app.post(
            &format!("/v1/screening/hits/{hit_id}/approval"),
            Some(token),
            &body,
        )
    };
    let proposed = review(
        &senior,
        json!({ "decision": "dismiss", "reason": "different date of birth on the passport" }),
    );
    assert_eq!(proposed.status, 200, "{}", proposed.body);
    assert_eq!(proposed.json()["status"], "dismissal_pending");
    let same = approval(
        &senior,
        json!({ "approve": true, "reason": "agreed with myself" }),
    );
    assert_eq!(same.status, 403, "{}", same.body);
    let junior = approval(
        &officer,
        json!({ "approve": true, "reason": "looks fine to me" }),
    );
    assert_eq!(junior.status, 403, "{}", junior.body);
    let approved = approval(
        &other_senior,
        json!({ "approve": true, "reason": "checked the passport copy" }),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.json()["status"], "dismissed");
    let again = review(
        &officer,
        json!({ "decision": "confirm", "reason": "second thoughts" }),
    );
    assert_eq!(again.status, 409, "{}", again.body);
    let actions = app.query_text(&format!(
        "SELECT action AS value FROM hit_reviews WHERE hit_id = '{hit_id}' ORDER BY at"
    ));
    assert_eq!(actions, vec!["propose_dismissal", "approve_dismissal"]);

    // Rescreening everyone against unchanged lists: the hit is found again, but stays dismissed.
    let output = app.command(&["screening", "rescreen"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(alerts(app, &officer, &subject).is_empty());
    let suppressed = app.query_text(&format!(
        "SELECT h.suppressed_by AS value FROM screening_hits h JOIN screenings s ON s.id = h.screening_id \
         WHERE s.subject_ref = '{subject}' AND s.trigger = 'rescreen:all' AND h.entry_id = '2685'"
    ));
    assert_eq!(suppressed, vec![hit_id.clone()]);

    // A new list version that changes entry 2685: the import rescreens, and the hit is back.
    let changed = app.directory().join("ofac-changed");
    std::fs::create_dir_all(&changed).unwrap();
    for name in ["add.csv", "alt.csv", "sdn_comments.csv"] {
        std::fs::copy(format!("{sanctions}/ofac/{name}"), changed.join(name)).unwrap();
    }
    let sdn = std::fs::read_to_string(format!("{sanctions}/ofac/sdn.csv")).unwrap();
    let listed = "2685,\"NAJI, Talal Muhammad Rashid\",\"individual\",\"SDGT\"";
    assert!(sdn.contains(listed));
    std::fs::write(
        changed.join("sdn.csv"),
        sdn.replace(listed, &listed.replace("SDGT", "SDGT] [SYRIA")),
    )
    .unwrap();
    let supplement = format!("{sanctions}/ofac-addresses/sdn_comments.csv");
    let output = import(app, "ofac-sdn", &[changed.to_str().unwrap(), &supplement]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("1 changed"), "{printed}");
    assert!(printed.contains("1 new alerts"), "{printed}");
    let raised = alerts(app, &officer, &subject);
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["hit"]["entry_id"], "2685");
    assert_eq!(raised[0]["trigger"], "rescreen:ofac-sdn:2");
    assert_ne!(raised[0]["hit"]["entry_version"], hit["entry_version"]);
}

/// A `multipart/form-data` body with one part per (file name, bytes).
fn multipart(files: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "hashgate-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(
    app: &TestApp,
    token: &str,
    source: &str,
    files: &[(&str, Vec<u8>)],
) -> crate::common::Response {
    let (content_type, body) = multipart(files);
    app.request(
        "POST",
        &format!("/v1/lists/{source}"),
        Some(token),
        Some((&content_type, body)),
        &[],
    )
}

/// Polls a job until it is finished (or failed), for at most a minute.
fn finished_job(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let response = app.get(&format!("/v1/screening/jobs/{id}"), Some(token));
        assert_eq!(response.status, 200, "{}", response.body);
        let job = response.json();
        match job["status"].as_str().unwrap() {
            "finished" => return job,
            "failed" => panic!("job failed: {job}"),
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    panic!("job {id} did not finish");
}

fn uploaded_lists_rescreen_monitored_subjects_as_jobs(app: &TestApp) {
    let sanctions = sanctions_dir();
    let admin = app.token(Role::Admin, None, None);
    let officer = app.token(Role::Officer, None, None);
    let senior = app.token(Role::SeniorOfficer, None, None);
    // Two customers screened while no list is loaded: nothing found, both now monitored.
    for (subject, name) in [
        ("cust-1", "Floribert Ngabu Njabu"),
        ("cust-2", "Anna Schmidt"),
    ] {
        let hits = screen(
            app,
            &officer,
            "person",
            json!({ "name": name, "subject_ref": subject, "jurisdiction": "HK" }),
        );
        assert!(hits.is_empty(), "{hits:?}");
    }
    let un = std::fs::read(format!("{sanctions}/un/UN_consolidated.xml")).unwrap();

    // Only an admin uploads, as multipart; a malformed file is refused and changes nothing.
    let refused = upload(app, &officer, "un-consolidated", &[("un.xml", un.clone())]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let json_body = app.post("/v1/lists/un-consolidated", Some(&admin), &json!({}));
    assert_eq!(json_body.status, 415, "{}", json_body.body);
    let unknown = upload(app, &admin, "interpol", &[("un.xml", un.clone())]);
    assert_eq!(unknown.problem_fields(400), vec!["source"]);
    let truncated = upload(
        app,
        &admin,
        "un-consolidated",
        &[("un.xml", un[..un.len() / 2].to_vec())],
    );
    assert_eq!(truncated.problem_fields(422), vec!["files"]);
    assert!(app
        .get("/v1/lists", Some(&officer))
        .json()
        .as_array()
        .unwrap()
        .is_empty());

    // The upload stores version 1 and queues the rescreen of its entries; the worker runs it.
    let loaded = upload(
        app,
        &admin,
        "un-consolidated",
        &[("UN_consolidated.xml", un.clone())],
    );
    assert_eq!(loaded.status, 201, "{}", loaded.body);
    let loaded = loaded.json();
    assert_eq!(loaded["list"]["version"], 1);
    let entries = loaded["list"]["entries"].as_i64().unwrap();
    assert!(entries > 1000, "{loaded}");
    assert_eq!(
        loaded["rescreen_job"]["reason"],
        "rescreen:un-consolidated:1"
    );
    let job_id = loaded["rescreen_job"]["id"].as_str().unwrap().to_string();
    let job = finished_job(app, &officer, &job_id);
    assert_eq!(job["subjects"], 2, "{job}");
    assert_eq!(job["done"], 2, "{job}");
    assert_eq!(job["entries"], entries, "{job}");
    assert_eq!(job["new_hits"], 1, "{job}");
    let raised = alerts(app, &officer, "cust-1");
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["trigger"], "rescreen:un-consolidated:1");
    assert!(alerts(app, &officer, "cust-2").is_empty());

    // The same file again: nothing changes, nothing is rescreened.
    let again = upload(
        app,
        &admin,
        "un-consolidated",
        &[("UN_consolidated.xml", un)],
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["rescreen_job"], Value::Null);

    // OFAC takes its legacy CSV files, several remark files included.
    let mut files: Vec<(&str, Vec<u8>)> = ["sdn.csv", "add.csv", "alt.csv", "sdn_comments.csv"]
        .into_iter()
        .map(|name| {
            (
                name,
                std::fs::read(format!("{sanctions}/ofac/{name}")).unwrap(),
            )
        })
        .collect();
    files.push((
        "supplement_comments.csv",
        std::fs::read(format!("{sanctions}/ofac-addresses/sdn_comments.csv")).unwrap(),
    ));
    let ofac = upload(app, &admin, "ofac-sdn", &files);
    assert_eq!(ofac.status, 201, "{}", ofac.body);
    let ofac_entries = ofac.json()["list"]["entries"].as_i64().unwrap();
    assert!(ofac_entries > 8900, "{}", ofac.body);
    finished_job(
        app,
        &officer,
        ofac.json()["rescreen_job"]["id"].as_str().unwrap(),
    );

    // A full rescreen on request (senior officers, admin), with a reason for the audit log. The
    // open alert is not raised a second time.
    let denied = app.post(
        "/v1/screening/jobs",
        Some(&officer),
        &json!({ "reason": "threshold review" }),
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    let queued = app.post(
        "/v1/screening/jobs",
        Some(&senior),
        &json!({ "reason": "quarterly full rescreen" }),
    );
    assert_eq!(queued.status, 202, "{}", queued.body);
    assert_eq!(queued.json()["reason"], "rescreen:all");
    let job = finished_job(app, &officer, queued.json()["id"].as_str().unwrap());
    assert_eq!(job["entries"], entries + ofac_entries, "{job}");
    assert_eq!(job["done"], 2, "{job}");
    assert_eq!(job["new_hits"], 0, "{job}");
    assert_eq!(alerts(app, &officer, "cust-1").len(), 1);
    let reasons = app.query_text(&format!(
        "SELECT reason AS value FROM audit_log WHERE action = 'screening.rescreen_queued' \
         AND subject_id = '{}'",
        job["id"].as_str().unwrap()
    ));
    assert_eq!(reasons, vec!["quarterly full rescreen"]);

    let jobs = app.get("/v1/screening/jobs", Some(&officer));
    assert_eq!(jobs.status, 200, "{}", jobs.body);
    let reasons: Vec<String> = jobs
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons[0], "rescreen:all", "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|reason| reason == "rescreen:un-consolidated:1"),
        "{reasons:?}"
    );
    let platform = app.token(Role::Platform, None, None);
    let user_id = app.create_user(&platform, "cust-3");
    let user = app.token(Role::User, None, Some(&user_id));
    assert_eq!(app.get("/v1/screening/jobs", Some(&user)).status, 403);
}

fn a_matcher_configuration_change_rescreens_everyone(app: &TestApp) {
    let officer = app.token(Role::Officer, None, None);
    // The service checks the configuration when it starts.
    let started = (0..100)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            app.query_text(
                "SELECT matcher_config AS value FROM screening_jobs WHERE reason = 'rescreen:config'",
            )
        })
        .find(|found| !found.is_empty())
        .expect("the service queued no configuration check");
    assert_eq!(started.len(), 1, "{started:?}");
    let current = hashgate::jurisdiction::Jurisdictions::load_default().unwrap();
    assert_eq!(started[0], hashgate::aml::monitor::matcher_config(&current));
    assert!(
        hashgate::aml::monitor::enqueue_if_config_changed(&app.state_db, &current)
            .unwrap()
            .is_none()
    );

    // Hong Kong's threshold is lowered: every monitored subject is screened again.
    let hits = screen(
        app,
        &officer,
        "person",
        json!({ "name": "Wei Zhang", "subject_ref": "cust-9", "jurisdiction": "HK" }),
    );
    assert!(hits.is_empty());
    let changed = app.directory().join("jurisdictions");
    std::fs::create_dir_all(&changed).unwrap();
    let shipped = hashgate::jurisdiction::rules::default_directory();
    let lists = changed.join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::copy(shipped.join("lists/fatf.toml"), lists.join("fatf.toml")).unwrap();
    for file in std::fs::read_dir(&shipped).unwrap() {
        let path = file.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text = if path.ends_with("HK.toml") {
            text.replace("threshold = 0.75", "threshold = 0.8")
        } else {
            text
        };
        std::fs::write(changed.join(path.file_name().unwrap()), text).unwrap();
    }
    let lowered = hashgate::jurisdiction::Jurisdictions::load(&changed).unwrap();
    assert_eq!(lowered.get("HK").unwrap().screening.threshold, 0.8);
    let job = hashgate::aml::monitor::enqueue_if_config_changed(&app.state_db, &lowered)
        .unwrap()
        .expect("a changed threshold queues a full rescreen");
    assert_eq!(job.reason, "rescreen:config");
    assert_ne!(job.matcher_config, started[0]);
    let finished = finished_job(app, &officer, &job.id);
    assert_eq!(finished["subjects"], 1, "{finished}");
    assert_eq!(finished["done"], 1, "{finished}");
    // Queued once: the next check finds it.
    assert!(
        hashgate::aml::monitor::enqueue_if_config_changed(&app.state_db, &lowered)
            .unwrap()
            .is_none()
    );
}
