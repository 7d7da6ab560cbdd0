//! The two messages of `grpc.health.v1` in protobuf wire format, inside gRPC's length-prefixed
//! framing (1 byte compressed flag, 4 bytes big-endian length).
//!
//! ```proto
//! message HealthCheckRequest { string service = 1; }
//! message HealthCheckResponse { enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2;
//!   SERVICE_UNKNOWN = 3; } ServingStatus status = 1; }
//! ```

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServingStatus {
    Unknown,
    Serving,
    NotServing,
    ServiceUnknown,
    /// A value this version of the enum does not name.
    Other(u64),
}

impl ServingStatus {
    pub fn name(self) -> String {
        match self {
            ServingStatus::Unknown => "UNKNOWN".into(),
            ServingStatus::Serving => "SERVING".into(),
            ServingStatus::NotServing => "NOT_SERVING".into(),
            ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN".into(),
            ServingStatus::Other(n) => format!("status {n}"),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

/// A framed `HealthCheckRequest`; an empty service is left out, as proto3 does.
pub fn encode_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(service.len() + 6);
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = Vec::with_capacity(msg.len() + 5);
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// The status of one framed `HealthCheckResponse`; unknown fields are skipped, as protobuf
/// readers must.
pub fn decode_response(framed: &[u8]) -> Result<ServingStatus, String> {
    if framed.len() < 5 {
        return Err(format!(
            "{} bytes, shorter than a gRPC frame header",
            framed.len()
        ));
    }
    if framed[0] != 0 {
        return Err("compressed message (no compression was offered)".into());
    }
    let len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
    let msg = framed
        .get(5..5 + len)
        .ok_or_else(|| format!("frame says {len} bytes, {} came", framed.len() - 5))?;
    let mut pos = 0;
    let mut status = 0u64;
    while pos < msg.len() {
        let key = get_varint(msg, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = get_varint(msg, &mut pos)?;
                if field == 1 {
                    status = v;
                }
            }
            1 => pos += 8,
            2 => {
                let n = get_varint(msg, &mut pos)? as usize;
                pos = pos.checked_add(n).ok_or("length overflow")?;
            }
            5 => pos += 4,
            other => return Err(format!("unsupported wire type {other}")),
        }
        if pos > msg.len() {
            return Err("truncated message".into());
        }
    }
    Ok(match status {
        0 => ServingStatus::Unknown,
        1 => ServingStatus::Serving,
        2 => ServingStatus::NotServing,
        3 => ServingStatus::ServiceUnknown,
        n => ServingStatus::Other(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        assert_eq!(encode_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(
            encode_request("a.B"),
            vec![0, 0, 0, 0, 5, 0x0a, 3, b'a', b'.', b'B']
        );
        let long = "x".repeat(200);
        let r = encode_request(&long);
        assert_eq!(&r[5..8], &[0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn response_bytes() {
        assert_eq!(
            decode_response(&[0, 0, 0, 0, 0]),
            Ok(ServingStatus::Unknown)
        );
        assert_eq!(
            decode_response(&[0, 0, 0, 0, 2, 8, 1]),
            Ok(ServingStatus::Serving)
        );
        assert_eq!(
            decode_response(&[0, 0, 0, 0, 2, 8, 2]),
            Ok(ServingStatus::NotServing)
        );
        // An unknown string field before the status is skipped.
        assert_eq!(
            decode_response(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 8, 1]),
            Ok(ServingStatus::Serving)
        );
        assert!(decode_response(&[0, 0, 0, 0, 3, 8, 1]).is_err());
        assert!(decode_response(&[1, 0, 0, 0, 0]).is_err());
        assert!(decode_response(&[0, 0, 0, 0, 2, 8, 0x80]).is_err());
    }
}
