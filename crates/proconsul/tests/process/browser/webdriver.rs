//! A tiny W3C WebDriver client: ChromeDriver started on a free port, one headless Chromium
//! session, and the handful of commands the UI tests need (navigate, find, click, type,
//! run a script, screenshot). Blocking, over `ureq`, JSON in and out.
//!
//! Chromium and ChromeDriver come from Debian (`chromium`, `chromium-driver`; `scripts/test`
//! installs them). Missing, the tests fail: they are never skipped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key W3C WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running ChromeDriver, killed when dropped.
pub struct Driver {
    child: Child,
    base: String,
    http: ureq::Agent,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(names: &[&str]) -> String {
    for name in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = format!("{dir}/{name}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!(
        "{} not found: the browser tests need Debian's chromium and chromium-driver \
         (scripts/test installs them: apt-get install chromium chromium-driver)",
        names.join(" or ")
    );
}

impl Driver {
    /// Start ChromeDriver on a free port and wait until it answers.
    pub fn start() -> Driver {
        let path = binary(&["chromedriver"]);
        let port = crate::common::free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = d
                .http
                .get(format!("{}/status", d.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return d;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A new headless Chromium session with a `width`×`height` window.
    pub fn session(&self, width: u32, height: u32) -> Session<'_> {
        self.session_with(width, height, &[])
    }

    /// [`Driver::session`] with more Chromium switches.
    pub fn session_with(&self, width: u32, height: u32, extra: &[&str]) -> Session<'_> {
        let chromium = binary(&["chromium", "chromium-browser"]);
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            // Without the background-networking switches Chromium keeps dialling out, which
            // a machine without a network refuses, many times a second.
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
            },
        }}});
        let v = self.send("POST", "/session", Some(caps));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Session { driver: self, id }
    }

    /// One command; its `value`, or a panic naming WebDriver's error.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.http.get(&url).call(),
            ("DELETE", _) => self.http.delete(&url).call(),
            (_, body) => self
                .http
                .post(&url)
                .send_json(body.unwrap_or_else(|| json!({}))),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v: Value = resp
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        if status != 200 {
            panic!("{method} {path}: {status} {}", v["value"]);
        }
        v["value"].clone()
    }
}

/// A browser session, closed when dropped.
pub struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.driver.base, self.id);
        let _ = self.driver.http.delete(&url).call();
    }
}

impl Session<'_> {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.driver
            .send(method, &format!("/session/{}{path}", self.id), body)
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Run `script` (a function body; `arguments` holds `args`) and return its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Poll `script` until it returns true; panics with `what` (and the page's status line)
    /// after `within`. Returns how long it took.
    pub fn wait(&self, what: &str, within: Duration, script: &str, args: Value) -> Duration {
        let start = Instant::now();
        loop {
            if self.js(script, args.clone()) == json!(true) {
                return start.elapsed();
            }
            if start.elapsed() > within {
                let status = self.js(
                    "var s = document.getElementById('status'); return s ? s.textContent : '';",
                    json!([]),
                );
                panic!("timed out after {within:?} waiting for {what} (status line: {status})");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The element `css` selects, waiting up to 5 s for it to exist.
    pub fn find(&self, css: &str) -> Element<'_, '_> {
        let start = Instant::now();
        loop {
            let r = self
                .driver
                .http
                .post(format!("{}/session/{}/element", self.driver.base, self.id));
            let found = r
                .send_json(json!({"using": "css selector", "value": css}))
                .ok()
                .filter(|r| r.status() == 200)
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .and_then(|v| v["value"][ELEMENT].as_str().map(str::to_string));
            if let Some(id) = found {
                return Element { session: self, id };
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no element {css:?} on the page"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.cmd("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or(""))
            .expect("screenshot is base64")
    }
}

/// An element of the page.
pub struct Element<'s, 'd> {
    session: &'s Session<'d>,
    id: String,
}

impl Element<'_, '_> {
    pub fn click(&self) {
        self.session
            .cmd("POST", &format!("/element/{}/click", self.id), None);
    }

    /// Type `text` into the element (after what it holds).
    pub fn send_keys(&self, text: &str) {
        self.session.cmd(
            "POST",
            &format!("/element/{}/value", self.id),
            Some(json!({ "text": text })),
        );
    }

    pub fn clear(&self) {
        self.session
            .cmd("POST", &format!("/element/{}/clear", self.id), None);
    }
}
