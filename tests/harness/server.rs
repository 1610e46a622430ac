//! A running `dartts serve` and the requests tests send it, and what they read from its
//! responses.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Child;

pub struct Server {
    pub(crate) _child: Child,
    pub base: String,
    /// The `/metrics` URL the server announced (`TestEnv::with_metrics`).
    pub(crate) metrics: Option<String>,
    pub http: reqwest::Client,
    /// Bearer token sent by `gql`/`data` unless a session says otherwise.
    pub token: Option<String>,
}

/// Requests sent with one principal's token.
pub struct Session<'a> {
    server: &'a Server,
    token: Option<String>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `/metrics` text of the listener `TestEnv::with_metrics` asked for.
    pub async fn metrics(&self) -> String {
        let url = self
            .metrics
            .as_deref()
            .expect("no metrics listener (TestEnv::with_metrics)");
        self.http
            .get(url)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Sends `head` (request line and headers, no body) on a connection of its own and returns
    /// the response's status code. For requests the server refuses and then closes the
    /// connection on (a body over the limit): through the pooled `http` client, the next
    /// request could pick up that closed connection and fail with a broken pipe, and a body
    /// still being written when the server closes can turn its answer into a reset.
    pub async fn raw_status(&self, head: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let authority = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect");
        let head = format!(
            "{}\r\nHost: {authority}\r\nConnection: close\r\n\r\n",
            head.trim_end()
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        let mut answer = Vec::new();
        let mut buf = [0_u8; 4096];
        // The status line is all we need; stop there rather than wait for the server to close.
        while !answer.windows(2).any(|w| w == b"\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
                .await
                .expect("response in time")
                .expect("read response");
            assert!(n > 0, "connection closed before a status line: {answer:?}");
            answer.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&answer);
        line.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP status line: {line}"))
    }

    pub fn session(&self, token: Option<&str>) -> Session<'_> {
        Session {
            server: self,
            token: token.map(str::to_owned),
        }
    }

    /// POSTs a GraphQL operation with the default token; returns the JSON response.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.session(self.token.as_deref())
            .gql(query, variables)
            .await
    }

    /// Like `gql`, but fails the test on any GraphQL error and returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        self.session(self.token.as_deref())
            .data(query, variables)
            .await
    }
}

impl Session<'_> {
    /// POSTs a GraphQL operation; returns the HTTP status and the JSON body.
    pub async fn post(&self, query: &str, variables: Value) -> (u16, Value) {
        let mut request = self
            .server
            .http
            .post(self.server.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON response"))
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.post(query, variables).await.1
    }

    /// GETs `path` (an export, say) and returns the HTTP status and the body read as JSON: for
    /// refusals, which are GraphQL-shaped.
    pub async fn get_refused(&self, path: &str) -> (u16, Value) {
        let mut request = self.server.http.get(self.server.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON error body"))
    }

    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let response = self.gql(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}"
        );
        response["data"].clone()
    }

    /// The records this session's account has drawn on its quota in the current window.
    pub async fn quota_used(&self) -> u64 {
        self.data("{ quotaStatus { used } }", json!({})).await["quotaStatus"]["used"]
            .as_u64()
            .expect("quotaStatus.used")
    }
}

/// The nodes of a connection (`{ edges { node } }`).
pub fn nodes(connection: &Value) -> Vec<Value> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// `response` without its cursors (`cursor`, `endCursor`, `startCursor`): each cursor is
/// sealed with a nonce of its own, so two equal answers differ in them.
pub fn without_cursors(response: &Value) -> Value {
    match response {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "cursor" | "endCursor" | "startCursor"))
                .map(|(k, v)| (k.clone(), without_cursors(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_cursors).collect()),
        other => other.clone(),
    }
}

/// The `extensions.code` of every error in a response.
pub fn error_codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["extensions"]["code"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}
