//! A local HTTP server that records every request and, like many real services do in their
//! error pages, echoes the request (request line, headers, body) back in its answer: for leak
//! tests of what a client does with a server's response. Paths choose the answer:
//! containing `/ok`: 200 with `{"status":"UP"}`; containing `/okecho`: 200 with the echo;
//! anything else: 401 with the echo (401 is not retried by initbox's clients, so runs stay short).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Echo {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Echo {
    pub fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let r = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let r = Arc::clone(&r);
                std::thread::spawn(move || serve(stream, &r));
            }
        });
        Echo { port, requests }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request received so far, as text (request line, headers, body).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    if head.is_empty() {
        return;
    }
    let mut body = vec![0; len.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let text = format!("{head}{}", String::from_utf8_lossy(&body));
    requests.lock().unwrap().push(text.clone());
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let (status, answer) = if target.contains("/okecho") {
        (200, format!("you sent: {text}"))
    } else if target.contains("/ok") {
        (200, r#"{"status":"UP"}"#.to_string())
    } else {
        (401, format!("unauthorized request: {text}"))
    };
    let out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(out.as_bytes());
}
