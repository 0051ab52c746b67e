//! A small W3C WebDriver client over HTTP, enough to drive headless Chromium through
//! chromedriver: open pages, find elements, click, type, read text, take screenshots.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

/// chromedriver's path: `HASHGATE_TEST_CHROMEDRIVER`, else the PATH.
fn chromedriver() -> String {
    std::env::var("HASHGATE_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

fn chromium() -> String {
    std::env::var("HASHGATE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Browser {
    pub fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        // The closed network refuses Chromium's background connections: switch them off.
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        }
        .unwrap_or_else(|error| panic!("WebDriver {method} {path}: {error}"));
        let value: Value = response.body_mut().read_json().unwrap();
        value.get("value").cloned().unwrap_or(value)
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let value = self.call(method, &format!("/session/{}{path}", self.session), body);
        if let Some(error) = value.get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    pub fn go(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element matching a CSS selector, waiting up to 10 s for it to appear.
    pub fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.call(
                "POST",
                &format!("/session/{}/element", self.session),
                Some(json!({ "using": "css selector", "value": css })),
            );
            if let Some(id) = found.get(ELEMENT_KEY).and_then(Value::as_str) {
                return Element {
                    browser: self,
                    id: id.to_string(),
                };
            }
            assert!(
                Instant::now() < deadline,
                "no element `{css}` on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the element's text contains `expected` (the page may still be loading, or
    /// an element of the page before may still be there), and returns the text.
    pub fn wait_text(&self, css: &str, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::new();
        while Instant::now() < deadline {
            let found = self.call(
                "POST",
                &format!("/session/{}/element", self.session),
                Some(json!({ "using": "css selector", "value": css })),
            );
            if let Some(id) = found.get(ELEMENT_KEY).and_then(Value::as_str) {
                let text = self.call(
                    "GET",
                    &format!("/session/{}/element/{id}/text", self.session),
                    None,
                );
                if let Some(text) = text.as_str() {
                    if text.contains(expected) {
                        return text.to_string();
                    }
                    last = text.to_string();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "`{css}` never said `{expected}` on {} (last: {last})",
            self.url()
        );
    }

    pub fn has(&self, css: &str) -> bool {
        let found = self.call(
            "POST",
            &format!("/session/{}/elements", self.session),
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_array()
            .is_some_and(|elements| !elements.is_empty())
    }

    /// Sends a key press to the page (for keyboard navigation).
    pub fn press(&self, key: &str) {
        let actions = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }
        ]}]});
        self.session_call("POST", "/actions", Some(actions));
    }

    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let encoded = self.session_call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        let value = self.call(
            "GET",
            &format!("/session/{}/cookie/{name}", self.session),
            None,
        );
        value
            .get("value")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub fn set_cookie(&self, name: &str, value: &str, path: &str) {
        self.session_call(
            "POST",
            "/cookie",
            Some(json!({ "cookie": { "name": name, "value": value, "path": path } })),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    pub fn click(&self) {
        self.browser.session_call(
            "POST",
            &format!("/element/{}/click", self.id),
            Some(json!({})),
        );
    }

    pub fn type_text(&self, text: &str) {
        self.browser.session_call(
            "POST",
            &format!("/element/{}/value", self.id),
            Some(json!({ "text": text })),
        );
    }

    pub fn text(&self) -> String {
        self.browser
            .session_call("GET", &format!("/element/{}/text", self.id), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}
