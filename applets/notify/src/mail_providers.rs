//! apprise's built-in mail providers: `mailto://user:pass@gmail.com` needs no SMTP host, port
//! or TLS mode because apprise knows them from the sender's domain. The table and its rules
//! follow apprise's `plugins/email/templates.py`.

use crate::target::SmtpTls;

/// How the provider wants the login: the whole address or the part before `@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Email,
    UserId,
    /// As given in the URL.
    AsGiven,
}

#[derive(Debug, Clone, Copy)]
pub struct Provider {
    pub host: &'static str,
    pub port: u16,
    pub tls: SmtpTls,
    pub login: Login,
}

const FASTMAIL_EXTENDED: &[&str] = &[
    "123mail.org",
    "airpost.net",
    "eml.cc",
    "fmail.co.uk",
    "fmgirl.com",
    "fmguy.com",
    "mailbolt.com",
    "mailcan.com",
    "mailhaven.com",
    "mailmight.com",
    "ml1.net",
    "mm.st",
    "myfastmail.com",
    "proinbox.com",
    "promessage.com",
    "rushpost.com",
    "sent.as",
    "sent.at",
    "sent.com",
    "speedymail.org",
    "warpmail.net",
    "xsmail.com",
    "150mail.com",
    "150ml.com",
    "16mail.com",
    "2-mail.com",
    "4email.net",
    "50mail.com",
    "allmail.net",
    "bestmail.us",
    "cluemail.com",
    "elitemail.org",
    "emailcorner.net",
    "emailengine.net",
    "emailengine.org",
    "emailgroups.net",
    "emailplus.org",
    "emailuser.net",
    "f-m.fm",
    "fast-email.com",
    "fast-mail.org",
    "fastem.com",
    "fastemail.us",
    "fastemailer.com",
    "fastest.cc",
    "fastimap.com",
    "fastmailbox.net",
    "fastmessaging.com",
    "fea.st",
    "fmailbox.com",
    "ftml.net",
    "h-mail.us",
    "hailmail.net",
    "imap-mail.com",
    "imap.cc",
    "imapmail.org",
    "inoutbox.com",
    "internet-e-mail.com",
    "internet-mail.org",
    "internetemails.net",
    "internetmailing.net",
    "jetemail.net",
    "justemail.net",
    "letterboxes.org",
    "mail-central.com",
    "mail-page.com",
    "mailandftp.com",
    "mailas.com",
    "mailc.net",
    "mailforce.net",
    "mailftp.com",
    "mailingaddress.org",
    "mailite.com",
    "mailnew.com",
    "mailsent.net",
    "mailservice.ms",
    "mailup.net",
    "mailworks.org",
    "mymacmail.com",
    "nospammail.net",
    "ownmail.net",
    "petml.com",
    "postinbox.com",
    "postpro.net",
    "realemail.net",
    "reallyfast.biz",
    "reallyfast.info",
    "speedpost.net",
    "ssl-mail.com",
    "swift-mail.com",
    "the-fastest.net",
    "the-quickest.com",
    "theinternetemail.com",
    "veryfast.biz",
    "veryspeedy.net",
    "yepmail.net",
];

const FASTMAIL_TLDS: &[&str] = &[
    "com", "cn", "co.uk", "com.au", "de", "es", "fm", "fr", "im", "in", "jp", "mx", "net", "nl",
    "org", "se", "to", "tw", "uk", "us",
];

/// `name.TLD` for one of `tlds`.
fn under(domain: &str, name: &str, tlds: &[&str]) -> bool {
    domain
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|tld| tlds.contains(&tld))
}

/// The provider of a sender `domain` (lower case), if apprise knows it.
pub fn provider(domain: &str) -> Option<Provider> {
    use Login::*;
    use SmtpTls::{Implicit, StartTls};
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let d = d.as_str();
    let p = |host, port, tls, login| {
        Some(Provider {
            host,
            port,
            tls,
            login,
        })
    };
    let no_smtp = d.strip_prefix("smtp.").unwrap_or(d);
    if d == "gmail.com" {
        p("smtp.gmail.com", 587, StartTls, Email)
    } else if under(
        d,
        "yandex",
        &["com", "ru", "ua", "by", "kz", "uz", "tr", "fr"],
    ) {
        p("smtp.yandex.ru", 465, Implicit, UserId)
    } else if under(d, "hotmail", &["com", "com.au"]) || under(d, "live", &["com", "com.au"]) {
        p("smtp-mail.outlook.com", 587, StartTls, Email)
    } else if under(no_smtp, "outlook", &["com", "com.au"]) {
        p("smtp.outlook.com", 587, StartTls, Email)
    } else if no_smtp == "office365.com" {
        p("smtp.office365.com", 587, StartTls, AsGiven)
    } else if under(d, "yahoo", &["ca", "com"]) {
        p("smtp.mail.yahoo.com", 465, Implicit, Email)
    } else if under(d, "gmx", &["com", "net", "de", "at", "ch", "fr"]) {
        p("mail.gmx.com", 587, StartTls, Email)
    } else if under(d, "fastmail", FASTMAIL_TLDS) || FASTMAIL_EXTENDED.contains(&d) {
        p("smtp.fastmail.com", 465, Implicit, Email)
    } else if d == "zoho.com" || d == "zohomail.com" {
        p("smtp.zoho.com", 587, StartTls, Email)
    } else if under(d, "sendgrid", &["com", "net"]) || under(d, ".smtpsendgrid", &["com", "net"]) {
        p("smtp.sendgrid.net", 465, Implicit, UserId)
    } else if d == "163.com" {
        p("smtp.163.com", 465, Implicit, Email)
    } else if d == "foxmail.com" || d == "qq.com" {
        p("smtp.qq.com", 587, StartTls, Email)
    } else if d == "comcast.net" {
        p("smtp.comcast.net", 465, Implicit, Email)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_follow_apprise_templates() {
        let gmail = provider("gmail.com").unwrap();
        assert_eq!(
            (gmail.host, gmail.port, gmail.tls),
            ("smtp.gmail.com", 587, SmtpTls::StartTls)
        );
        assert_eq!(provider("yandex.ru").unwrap().login, Login::UserId);
        assert_eq!(
            provider("live.com.au").unwrap().host,
            "smtp-mail.outlook.com"
        );
        assert_eq!(provider("sent.com").unwrap().host, "smtp.fastmail.com");
        assert_eq!(provider("fastmail.co.uk").unwrap().port, 465);
        assert!(provider("example.com").is_none());
        assert!(provider("notgmail.com").is_none());
    }
}
