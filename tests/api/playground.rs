//! The playground at `/playground`: the embedded build is the build of the current sources, the
//! server serves it with the right types and caching, and it works in a real browser.

use crate::support::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The files `playground/build.mjs` hashes: its own source, the package files and `src/`.
fn source_files(dir: &Path, relative: &str, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir.join(relative)).expect("playground/src is readable") {
        let entry = entry.expect("a directory entry");
        let path = format!("{relative}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("a file type").is_dir() {
            source_files(dir, &path, files);
        } else {
            files.push(path);
        }
    }
}

/// The same hash as `sourcesHash()` in `playground/build.mjs`.
fn sources_hash(dir: &Path) -> String {
    let mut files = vec!["build.mjs".to_owned(), "package.json".to_owned(), "package-lock.json".to_owned()];
    source_files(dir, "src", &mut files);
    files.sort();
    let listing: String = files
        .iter()
        .map(|path| format!("{path}\t{}\n", sha256(&std::fs::read(dir.join(path)).expect("a source file"))))
        .collect();
    sha256(listing.as_bytes())
}

fn build_info() -> Value {
    let text = std::fs::read_to_string(root().join("playground/dist/build-info.json"))
        .expect("playground/dist/build-info.json exists: run playground/build.sh");
    serde_json::from_str(&text).expect("build-info.json is JSON")
}

#[test]
fn the_embedded_build_is_the_build_of_the_current_sources() {
    let dir = root().join("playground");
    let info = build_info();
    assert_eq!(
        info["sources"].as_str(),
        Some(sources_hash(&dir).as_str()),
        "playground/dist was built from other sources than playground/src, build.mjs and the package \
         files: run playground/build.sh and commit playground/dist"
    );
    let files = info["files"].as_object().expect("build-info.json lists the built files");
    let mut on_disk = Vec::new();
    source_files(&dir, "dist", &mut on_disk);
    on_disk.retain(|path| path != "dist/build-info.json");
    on_disk.sort();
    let mut listed: Vec<String> = files.keys().map(|name| format!("dist/{name}")).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "playground/dist holds exactly the files its build wrote");
    for (name, hash) in files {
        let bytes = std::fs::read(dir.join("dist").join(name)).expect("a built file");
        assert_eq!(
            Some(sha256(&bytes).as_str()),
            hash.as_str(),
            "playground/dist/{name} is not what the build wrote: run playground/build.sh"
        );
    }
}

/// The `/playground/assets/...?v=...` addresses in a text.
fn asset_urls(text: &str) -> Vec<String> {
    let mut urls: Vec<String> = text
        .match_indices("/playground/assets/")
        .map(|(at, _)| {
            text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || "/._-?=".contains(*c)).collect::<String>()
        })
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_types_and_caching() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |path: &str| client.get(format!("{}{path}", app.address));

    let page = get("/playground").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert!(header(&page, "content-security-policy").contains("default-src 'self'"));
    let etag = header(&page, "etag").to_owned();
    let html = page.text().await.unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "the page names no other host: {html}");
    let revalidated = get("/playground").header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(revalidated.status(), 304);

    let redirect = get("/playground/").send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(header(&redirect, "location"), "/playground");

    // The page's stylesheet and script, and the workers the script starts.
    let mut urls = asset_urls(&html);
    assert_eq!(urls.len(), 2, "one stylesheet and one script: {urls:?}");
    let script = urls.iter().find(|url| url.contains("/playground.js?v=")).expect("the script").clone();
    let bundle = get(&script).send().await.unwrap().text().await.unwrap();
    let workers = asset_urls(&bundle);
    assert_eq!(workers.len(), 3, "the editor, JSON and GraphQL workers: {workers:?}");
    urls.extend(workers);

    for url in &urls {
        let name = url.trim_start_matches("/playground/assets/").split('?').next().unwrap();
        let on_disk = std::fs::read(root().join("playground/dist/assets").join(name)).unwrap();
        let gzipped = std::fs::read(root().join("playground/dist/assets").join(format!("{name}.gz"))).unwrap();
        let content_type =
            if name.ends_with(".css") { "text/css; charset=utf-8" } else { "text/javascript; charset=utf-8" };

        let plain = get(url).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{url}");
        assert_eq!(header(&plain, "content-type"), content_type, "{url}");
        assert_eq!(header(&plain, "cache-control"), "public, max-age=31536000, immutable", "{url}");
        assert_eq!(header(&plain, "content-encoding"), "", "{url}");
        assert_eq!(header(&plain, "vary"), "accept-encoding", "{url}");
        let etag = header(&plain, "etag").to_owned();
        assert_eq!(plain.bytes().await.unwrap(), on_disk, "{url}");

        let compressed = get(url).header("accept-encoding", "gzip, deflate, br").send().await.unwrap();
        assert_eq!(header(&compressed, "content-encoding"), "gzip", "{url}");
        assert_eq!(header(&compressed, "content-type"), content_type, "{url}");
        assert_ne!(header(&compressed, "etag"), etag, "each encoding has its own ETag");
        assert_eq!(compressed.bytes().await.unwrap(), gzipped, "{url}");

        let refused = get(url).header("accept-encoding", "gzip;q=0").send().await.unwrap();
        assert_eq!(header(&refused, "content-encoding"), "", "{url}");

        let unchanged = get(url).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(unchanged.status(), 304, "{url}");
        assert!(unchanged.bytes().await.unwrap().is_empty());

        // Without the current version the asset may be kept, but only after asking again.
        let unversioned = get(url.split('?').next().unwrap()).send().await.unwrap();
        assert_eq!(unversioned.status(), 200);
        assert_eq!(header(&unversioned, "cache-control"), "no-cache");
        let stale = get(&format!("{}?v=0000000000000000", url.split('?').next().unwrap())).send().await.unwrap();
        assert_eq!(header(&stale, "cache-control"), "no-cache");
    }

    let missing = get("/playground/assets/nothing.js").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let outside = get("/playground/assets/..%2F..%2FCargo.toml").send().await.unwrap();
    assert_eq!(outside.status(), 404);
    app.stop().await;
}

/// Where the browser test leaves its screenshot (also printed).
fn screenshot_path() -> PathBuf {
    match std::env::var_os("PLAYGROUND_SCREENSHOT") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("playground.png"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_works_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `apt-get install -y chromium` (scripts/test installs it)"
    );
    let check = root().join("tests/playground-browser");
    assert!(
        check.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: `npm ci --prefix tests/playground-browser` (scripts/test runs it)"
    );

    let app = TestApp::spawn().await;
    let screenshot = screenshot_path();
    let (address, shot) = (app.address.clone(), screenshot.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(check.join("check.mjs"))
            .env("BASE_URL", address)
            .env("SCREENSHOT", shot)
            .env("CHROMIUM", chromium)
            .output()
            .expect("node runs (Node.js is on the machine)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("screenshot of the playground: {}", screenshot.display());
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("the browser check printed no report\nstdout: {stdout}\nstderr: {stderr}"));
    assert!(output.status.success() && report["ok"] == true, "the browser check failed: {report:#}\nstderr: {stderr}");

    assert_eq!(report["signedInAs"], DEMO_A);
    assert_eq!(report["schemaBeforeSignIn"], false, "a page opened signed out gets no schema: {report:#}");
    assert_eq!(report["schemaAfterSignIn"], true, "signing in loads the schema without a reload: {report:#}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    let hosts = report["hosts"].as_array().unwrap();
    let own_host = app.address.trim_start_matches("http://");
    assert!(hosts.iter().all(|host| host == own_host), "every request went to the server: {hosts:?}");
    let customers = report["customerIds"].as_array().unwrap();
    assert!(!customers.is_empty(), "demo customers shown: {report:#}");
    for id in customers {
        let number: u32 = id.as_str().unwrap()[1..].parse().unwrap();
        assert!((1..=30).contains(&number), "only demo-a's customers (c001–c030): {id}");
    }
    assert_eq!(report["secondWindowSignedInAs"], DEMO_A, "a second window shares the sign-in");
    let arrived = report["arrived"].as_str().expect("a chat message arrived");
    assert!(screenshot.exists(), "a screenshot at {}", screenshot.display());

    // What arrived live is a message the server stored, sent by the provider to c001.
    let token = app.login(DEMO_A).await;
    let query = "{ chatMessages(customerId: \"c001\", pageSize: 10) { items { id senderType } } }";
    let history = app.data(&token, query, serde_json::json!({})).await;
    let message = items(&history["chatMessages"]).iter().find(|m| m["id"] == arrived).cloned();
    assert_eq!(message.map(|m| m["senderType"].clone()), Some("SERVICE_PROVIDER".into()), "{history}");
    app.stop().await;
}

/// The saved examples of `playground/src/examples.js`: each operation's text and its variables
/// (the JavaScript literal read as JSON: unquoted keys and single-quoted strings are all it uses).
fn saved_examples() -> Vec<(String, Value)> {
    let source = std::fs::read_to_string(root().join("playground/src/examples.js")).expect("examples.js is readable");
    // The shared selections (`const CUSTOMER_FIELDS = `...`;`) the queries interpolate.
    let constants: Vec<(String, String)> = source
        .split("\nconst ")
        .skip(1)
        .filter_map(|part| {
            let (name, rest) = part.split_once(" = `")?;
            Some((format!("${{{name}}}"), rest.split_once('`')?.0.to_owned()))
        })
        .collect();
    let mut examples = Vec::new();
    for part in source.split("query: `").skip(1) {
        let (query, rest) = part.split_once('`').expect("a query closes its backquote");
        let query = constants.iter().fold(query.to_owned(), |query, (name, text)| query.replace(name, text));
        let next_example = rest.find("query: `").unwrap_or(rest.len());
        let variables = match rest[..next_example].split_once("variables:") {
            Some((_, literal)) if literal.trim_start().starts_with('{') => {
                let literal = literal.trim_start();
                let mut depth = 0;
                let end = literal
                    .char_indices()
                    .find(|(_, c)| {
                        depth += match c {
                            '{' => 1,
                            '}' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map(|(i, _)| i)
                    .expect("a closed object");
                javascript_literal_as_json(&literal[..=end])
            }
            _ => Value::Null,
        };
        examples.push((query, variables));
    }
    examples
}

fn javascript_literal_as_json(literal: &str) -> Value {
    let mut json = String::new();
    let mut in_string = false;
    let mut word = String::new();
    for c in literal.chars() {
        if in_string {
            json.push(if c == '\'' { '"' } else { c });
            in_string = c != '\'';
        } else if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if !word.is_empty() {
                let is_key = c == ':' && !word.chars().all(|d| d.is_ascii_digit());
                json.push_str(&if is_key { format!("\"{word}\"") } else { std::mem::take(&mut word) });
                word.clear();
            }
            if c == '}' && json.trim_end().ends_with(',') {
                json.truncate(json.trim_end().len() - 1);
            }
            in_string = c == '\'';
            json.push(if c == '\'' { '"' } else { c });
        }
    }
    json.push_str(&word);
    serde_json::from_str(&json).unwrap_or_else(|error| panic!("{literal} does not read as JSON ({error}): {json}"))
}

#[tokio::test]
async fn every_saved_example_is_valid_against_the_schema_and_runs_for_demo_a() {
    let app = TestApp::spawn().await;
    let token = app.login("demo-a").await;
    let examples = saved_examples();
    assert!(examples.len() >= 20, "the examples are read: {}", examples.len());
    for (query, variables) in examples {
        let answer = app.graphql(Some(&token), &query, variables.clone()).await;
        let errors = answer["errors"].as_array().cloned().unwrap_or_default();
        let subscription = query.lines().any(|line| line.starts_with("subscription "));
        // A subscription passes validation, then POST /graphql cannot run it (`/graphql/ws` does).
        let acceptable =
            |error: &Value| subscription && error["message"] == "Subscriptions are not supported on this transport.";
        assert!(errors.iter().all(acceptable), "an example fails: {query}\nvariables: {variables}\n{answer}");
    }
}
