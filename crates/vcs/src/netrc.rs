//! netrc parsing as the go command reads it (`cmd/go/internal/auth/netrc.go`): `machine`,
//! `login` and `password` tokens; `macdef` bodies skipped; parsing stops at `default`.

/// One `machine` entry with both a login and a password. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct NetrcLine {
    /// The host (as written: `host` or `host:port`).
    pub machine: String,
    /// The user name.
    pub login: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for NetrcLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetrcLine")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses netrc text; entries without a login or a password are dropped, as Go does.
pub fn parse(data: &str) -> Vec<NetrcLine> {
    let mut out = Vec::new();
    let (mut machine, mut login, mut password) = (String::new(), String::new(), String::new());
    let mut in_macro = false;
    for line in data.split('\n') {
        if in_macro {
            if line.is_empty() {
                in_macro = false;
            }
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let mut i = 0;
        while i + 1 < f.len() {
            match f[i] {
                "machine" => {
                    machine = f[i + 1].to_string();
                    login.clear();
                    password.clear();
                }
                "login" => login = f[i + 1].to_string(),
                "password" => password = f[i + 1].to_string(),
                "macdef" => in_macro = true,
                _ => {}
            }
            if !machine.is_empty() && !login.is_empty() && !password.is_empty() {
                out.push(NetrcLine {
                    machine: std::mem::take(&mut machine),
                    login: std::mem::take(&mut login),
                    password: std::mem::take(&mut password),
                });
            }
            i += 2;
        }
        if i < f.len() && f[i] == "default" {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_netrc_vectors() {
        // From cmd/go/internal/auth/netrc_test.go.
        let text = "machine incomplete\npassword none\n\nmachine api.github.com\n  login user\n  password pwd\n\nmachine incomlete.host\n  login justlogin\n\nmachine test.host\nlogin user2\npassword pwd2\n\nmachine oneline login user3 password pwd3\n\nmachine ignore.host macdef ignore\n  login nobody\n  password nothing\n\nmachine hasmacro.too macdef ignore-next-lines login user4 password pwd4\n  login nobody\n  password nothing\n\ndefault\nlogin anonymous\npassword gopher@golang.org\n\nmachine after.default\nlogin oops\npassword too-late-in-file\n";
        let got: Vec<(String, String, String)> = parse(text)
            .into_iter()
            .map(|l| (l.machine, l.login, l.password))
            .collect();
        let want = [
            ("api.github.com", "user", "pwd"),
            ("test.host", "user2", "pwd2"),
            ("oneline", "user3", "pwd3"),
            ("hasmacro.too", "user4", "pwd4"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}
