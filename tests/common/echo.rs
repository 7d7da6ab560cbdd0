//! A local HTTP server that records every request and, like many real services do in their
//! error pages, echoes the request (request line, headers, body) back in its answer: for leak
//! tests of what a client does with a server's response. Paths choose the answer:
//! containing `/ok`: 200 with `{"status":"UP"}`; containing `/okecho`: 200 with the echo;
//! anything else: 401 with the echo (401 is not retried by initbox's clients, so runs stay short).

use super::http::{Answer, HttpServer};

pub struct Echo {
    pub port: u16,
    server: HttpServer,
}

impl Echo {
    pub fn start() -> Echo {
        let server = HttpServer::start(|_, text| {
            let head = text.lines().next().unwrap_or_default();
            let target = head.split_whitespace().nth(1).unwrap_or("/");
            if target.contains("/okecho") {
                Answer::new(200, "text/plain", format!("you sent: {text}"))
            } else if target.contains("/ok") {
                Answer::new(200, "text/plain", r#"{"status":"UP"}"#)
            } else {
                Answer::new(401, "text/plain", format!("unauthorized request: {text}"))
            }
        });
        Echo {
            port: server.port,
            server,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.server.authority()
    }

    /// The underlying server.
    pub fn server(&self) -> &HttpServer {
        &self.server
    }

    /// Every request received so far, as text (request line, headers, body).
    pub fn requests(&self) -> Vec<String> {
        self.server.requests()
    }
}
