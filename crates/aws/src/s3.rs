//! S3 (filled next).
