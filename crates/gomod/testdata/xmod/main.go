// Command xmodvectors prints, as JSON lines, what golang.org/x/mod (and Go's path.Match) say
// about a list of inputs, so that gomod's ports can be compared with the real thing
// (tests/xmod_vectors.rs). Run through testdata/make-vectors.sh, which writes the output to
// testdata/vectors/xmod.jsonl.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

var out = json.NewEncoder(os.Stdout)

func emit(kind string, fields map[string]any) {
	fields["kind"] = kind
	if err := out.Encode(fields); err != nil {
		panic(err)
	}
}

func errString(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}

var paths = []string{
	"x.y/z", "x.y", "", "x.y/\u00ffz", "/x.y/z", "x./z", ".x/z", "-x/z", "x..y/z",
	"x.y/z/../../w", "x.y//z", "x.y/z//w", "x.y/z/", "x.y/z/v0", "x.y/z/v1", "x.y/z/v2",
	"x.y/z/v2.0", "X.y/z", "!x.y/z", "_x.y/z", "x.y!/z", "x.y\"/z", "x.y#/z", "x.y$/z",
	"x.y%/z", "x.y&/z", "x.y'/z", "x.y(/z", "x.y)/z", "x.y*/z", "x.y+/z", "x.y,/z", "x.y-/z",
	"x.y./zt", "x.y:/z", "x.y;/z", "x.y</z", "x.y=/z", "x.y>/z", "x.y?/z", "x.y@/z", "x.y[/z",
	"x.y\\/z", "x.y]/z", "x.y^/z", "x.y_/z", "x.y`/z", "x.y{/z", "x.y}/z", "x.y~/z", "x.y/z!",
	"x.y/z\"", "x.y/z#", "x.y/z$", "x.y/z%", "x.y/z&", "x.y/z'", "x.y/z(", "x.y/z)", "x.y/z*",
	"x.y/z+", "x.y/z,", "x.y/z-", "x.y/z.t", "x.y/z/t", "x.y/z:", "x.y/z;", "x.y/z<",
	"x.y/z=", "x.y/z>", "x.y/z?", "x.y/z@", "x.y/z[", "x.y/z\\", "x.y/z]", "x.y/z^", "x.y/z_",
	"x.y/z`", "x.y/z{", "x.y/z}", "x.y/z~", "x.y/x.foo", "x.y/aux.foo", "x.y/prn", "x.y/prn2",
	"x.y/com", "x.y/com1", "x.y/com1.txt", "x.y/calm1", "x.y/z~0", "x.y/z~09", "x.y/z09",
	"x.y/z09~", "x.y/z09~09z", "x.y/z09~09z~09", "x.y/z~1.go", "github.com/!123/logrus",
	"github.com/user/unicode/испытание", "../x", "./y", "x:y", "\\temp\\foo", ".gitignore",
	".github/ISSUE_TEMPLATE", "x☺y", "x.y/a b", "x.y/\u0905\u093e", "x.y/\u2160",
	"x.y/\u00e9t\u00e9", "x.y/e\u0301", "x.y/\u01c5", "x.y/\u02b0", "x.y/\u3042", "x.y/\U0001d400",
	"gopkg.in/yaml.v2", "gopkg.in/yaml.v0", "gopkg.in/yaml.v00", "gopkg.in/yaml.v1-unstable",
	"gopkg.in/yaml", "gopkg.in/yaml.v", "gopkg.in/foo/yaml.v2", "example.com/a/v10",
	"example.com/a/v02", "github.com/Azure/azure-sdk-for-go", "github.com/x/y/v2/v3",
	"example.com/CON", "example.com/conx", "example.com/lpt9.x", "example.com/lpt10",
	"example.com/a-", "example.com/-a", "example.com/a/-", "a.b.c.d/e", "1.2/x", "x.y/LPT1.go",
	"exa_mple.com/x", "example.com./x", "example-.com/x", "ex~ample.com/x",
}

var versions = []string{
	"", "v", "1.2.3", "V1.2.3", "bad", "v1", "v1.2", "v1.2.3", "v0.0.0", "v1.2.3-pre",
	"v1.2.3-pre.1", "v1.2.3-0", "v1.2.3-0a", "v1.2.3-a-b.c--", "v1.2.3+meta", "v1.2.3+meta-pre",
	"v1.2.3-pre+meta", "v1.2.3+incompatible", "v1.2.3+001", "v99999999999999999999.0.0",
	"v1-alpha.beta.gamma", "v1-pre", "v1+meta", "v1-pre+meta", "v1.2-pre", "v1.2+meta",
	"v1.2-pre+meta", "v1.0.0-alpha_beta", "v1.0.0-", "v1.0.0-alpha..", "v1.0.0-alpha..1",
	"v1.0.0-01", "v1.0.0-alpha.01", "v1.0.0+", "v1.0.0+meta..x", "v1.0.0+meta+meta",
	"v01.2.3", "v1.02.3", "v1.2.03", "v1.2.3.4", "v1..2", "v1.2.", "v1.2.3 ", " v1.2.3",
	"v-1.2.3", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta",
	"v1.0.0-beta.2", "v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.1", "v1.9.0", "v1.10.0",
	"v1.11.0", "v2.0.0", "v2.0.0+incompatible", "v10.0.0", "v1.2.3-456", "v1.2.3-456-xyz",
	"v99999999999999999998.0.0", "v100000000000000000000.0.0", "v1.0.0-999", "v1.0.0-a",
	"v1.0.0-1a", "v1.0.0-alpha.0", "v0.0.0-20191109021931-daa7c04131f5",
	"v1.0.1-0.20190101000000-aaaaaaaaaaaa", "v3.14-x", "v12",
}

// compareSet is compared pairwise (versions is too long for that).
var compareSet = []string{
	"", "bad", "v1", "v1.2", "v0.0.0-20191109021931-daa7c04131f5", "v0.0.0", "v0.1.0",
	"v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta", "v1.0.0-beta.2",
	"v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.0+meta", "v1.0.1-0.20190101000000-aaaaaaaaaaaa",
	"v1.0.1", "v1.2.0", "v1.2.3-456", "v1.2.3-456-xyz", "v1.2.3-pre", "v1.2.3", "v1.9.0",
	"v1.10.0", "v2.0.0", "v2.0.0+incompatible", "v10.0.0", "v99999999999999999998.0.0",
	"v99999999999999999999.0.0", "v100000000000000000000.0.0", "v1.0.0-999", "v1.0.0-a",
	"v1.0.0-1a", "v1.0.0-alpha.0",
}

var pseudos = []string{
	"v0.0.0-20191109021931-daa7c04131f5", "v1.0.0-20191109021931-daa7c04131f5",
	"v2.0.0-20191109021931-daa7c04131f5+incompatible", "v1.2.4-0.20191109021931-daa7c04131f5",
	"v1.2.4-0.20191109021931-daa7c04131f5+incompatible", "v1.2.3-pre.0.20191109021931-daa7c04131f5",
	"v1.2.3-pre.1.0.20191109021931-daa7c04131f5", "v1.2.3-0.0.20191109021931-daa7c04131f5",
	"v0.0.0-20191109021931-DAA7C04131F5", "v0.0.0-20191109021931-x",
	"v0.0.0-99999999999999-daa7c04131f5", "v1.2.3", "v1.2.3-pre", "v1.0.0-20191109021931",
	"v1.2.3-20191109021931-daa7c04131f5", "v1.2.4-1.20191109021931-daa7c04131f5",
	"v1.2.3-pre.20191109021931-daa7c04131f5", "v0.0.0-2019110902193-daa7c04131f5",
	"v0.0.0-201911090219310-daa7c04131f5", "v0.0.0-20191109021931-",
	"v0.0.0-20191109021931-daa7c04131f5+", "v0.0.0-20191109021931-daa7c04131f5+a..b",
	"v0.0-20191109021931-daa7c04131f5", "v0.0.0-20191109021931-daa7c041_31f5",
	"v0.0.0-20191109021931-daa7c04131f5-", "v1.0.1-0.20191109021931-daa7c04131f5",
	"v1.3.0-0.20191109021931-daa7c04131f5", "v1.2.10-0.20191109021931-daa7c04131f5",
	"v1.2.100-0.20191109021931-daa7c04131f5", "v2.2.4-0.20191109021931-daa7c04131f5+incompatible",
	"v2.2.3-pre.0.20191109021931-daa7c04131f5+incompatible", "v0.0.0-20200229000000-abcdefabcdef",
	"v0.0.0-20190229000000-abcdefabcdef", "v0.0.0-19000229000000-abcdefabcdef",
	"v0.0.0-20191301000000-abcdefabcdef", "v0.0.0-20191100000000-abcdefabcdef",
	"v0.0.0-20191131000000-abcdefabcdef", "v0.0.0-20191109240000-abcdefabcdef",
	"v0.0.0-20191109006000-abcdefabcdef", "v0.0.0-20191109000060-abcdefabcdef",
	"v0.0.0-20000229235959-abcdefabcdef", "v1.2.4-0.20191109021931-daa7c04131f5+meta",
	"v1.2.3-a.b.0.20191109021931-daa7c04131f5", "v1.2.3-.0.20191109021931-daa7c04131f5",
}

var checks = [][2]string{
	{"example.com/m", "v0.1.0"}, {"example.com/m", "v1.2.3"}, {"example.com/m", "v2.0.0+incompatible"},
	{"example.com/m", "v3.1.0-pre+incompatible"}, {"example.com/m/v2", "v2.0.0"},
	{"example.com/m/v2", "v2.1.0-0.20190101000000-abcdefabcdef"}, {"gopkg.in/yaml.v2", "v2.2.1"},
	{"gopkg.in/yaml.v1-unstable", "v1.0.0"}, {"gopkg.in/check.v1", "v0.0.0-20161208181325-20d25e280405"},
	{"gopkg.in/yaml.v0", "v0.1.0"}, {"example.com/m", "v2.0.0"}, {"example.com/m/v2", "v1.0.0"},
	{"example.com/m/v2", "v3.0.0"}, {"gopkg.in/yaml.v2", "v3.0.0"},
	{"gopkg.in/yaml.v2", "v0.0.0-20161208181325-20d25e280405"}, {"example.com/m", "1.0.0"},
	{"example.com/m/v1", "v1.0.0"}, {"example.com/m", "v1.2"}, {"example.com/m", "v1.2.3+meta"},
}

var escapeVersions = []string{
	"v1.2.3", "v1.0.0-RC1", "Master", "feature/x", "v1!", "", "..", "v1.", "con", "a*b",
	"caf\u00e9", "a\nb", "v1.2.3+incompatible", ".hidden", "-x", "a b", "a~1",
}

var globs = [][2]string{
	{"*/quote", "rsc.io/quote/v3"}, {"*/v3", "rsc.io/quote/v3"}, {"rsc", "rsc.io/quote"},
	{"rsc*", "rsc.io/quote"}, {"rsc.io", "rsc.io/quote/v3"}, {"", "rsc.io/quote"},
	{",", "rsc.io/quote"}, {"example.com,rsc.io", "rsc.io/quote"},
	{"example.com,,rsc.io/", "rsc.io/quote"}, {"rsc.io/quote", "rsc.io/quote"},
	{"rsc.io/quote", "rsc.io/quotes"}, {"rsc.io/quote/v3/x", "rsc.io/quote/v3"},
	{"*.corp.example.com", "git.corp.example.com/team/repo"},
	{"*.corp.example.com", "corp.example.com/team/repo"},
	{"github.com/acme/*", "github.com/acme/tools/cmd"}, {"github.com/acme/*", "github.com/acme"},
	{"github.com/ac?e", "github.com/acme/x"}, {"github.com/[a-c]cme", "github.com/acme/x"},
	{"github.com/[^a-c]cme", "github.com/acme/x"}, {"github.com/[", "github.com/["},
	{"*", "anything.example/at/all"}, {"**", "rsc.io/quote"}, {"*/*/*/*", "rsc.io/quote"},
	{"rsc.io//", "rsc.io/quote"}, {"/rsc.io", "rsc.io/quote"}, {"rsc.io/*/", "rsc.io/quote/v3"},
}

var matches = [][2]string{
	{"abc", "abc"}, {"*", "abc"}, {"*c", "abc"}, {"a*", "a"}, {"a*", "abc"}, {"a*", "ab/c"},
	{"a*/b", "abc/b"}, {"a*/b", "a/c/b"}, {"a*b*c*d*e*/f", "axbxcxdxe/f"},
	{"a*b*c*d*e*/f", "axbxcxdxexxx/f"}, {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f"},
	{"a*b*c*d*e*/f", "axbxcxdxexxx/fff"}, {"a*b?c*x", "abxbbxdbxebxczzx"},
	{"a*b?c*x", "abxbbxdbxebxczzy"}, {"ab[c]", "abc"}, {"ab[b-d]", "abc"}, {"ab[e-g]", "abc"},
	{"ab[^c]", "abc"}, {"ab[^b-d]", "abc"}, {"ab[^e-g]", "abc"}, {"a\\*b", "a*b"},
	{"a\\*b", "ab"}, {"a?b", "a☺b"}, {"a[^a]b", "a☺b"}, {"a???b", "a☺b"},
	{"a[^a][^a][^a]b", "a☺b"}, {"[a-ζ]*", "α"}, {"*[a-ζ]", "A"}, {"a?b", "a/b"},
	{"a*b", "a/b"}, {"[\\]a]", "]"}, {"[\\-]", "-"}, {"[x\\-]", "x"}, {"[x\\-]", "-"},
	{"[x\\-]", "z"}, {"[\\-x]", "x"}, {"[\\-x]", "-"}, {"[\\-x]", "a"}, {"[]a]", "]"},
	{"[-]", "-"}, {"[x-]", "x"}, {"[x-]", "-"}, {"[x-]", "z"}, {"[-x]", "x"}, {"[-x]", "-"},
	{"[-x]", "a"}, {"\\", "a"}, {"[a-b-c]", "a"}, {"[", "a"}, {"[^", "a"}, {"[^bc", "a"},
	{"a[", "a"}, {"a[", "ab"}, {"a[", "x"}, {"a/b[", "x"}, {"*x", "xxx"}, {"*x[", "a"},
	{"a*[", "ab"}, {"[a]*b[", "ab"}, {"*?", "a"}, {"?*?", "a"},
}

func main() {
	for _, p := range paths {
		emit("path", map[string]any{
			"path":   p,
			"module": errString(module.CheckPath(p)),
			"import": errString(module.CheckImportPath(p)),
			"file":   errString(module.CheckFilePath(p)),
		})
	}
	for _, v := range versions {
		emit("semver", map[string]any{
			"v":          v,
			"valid":      semver.IsValid(v),
			"canonical":  semver.Canonical(v),
			"module":     module.CanonicalVersion(v),
			"major":      semver.Major(v),
			"majorMinor": semver.MajorMinor(v),
			"prerelease": semver.Prerelease(v),
			"build":      semver.Build(v),
		})
	}
	for _, v := range compareSet {
		for _, w := range compareSet {
			emit("compare", map[string]any{"v": v, "w": w, "cmp": semver.Compare(v, w), "max": semver.Max(v, w)})
		}
	}
	for _, v := range pseudos {
		rec := map[string]any{"v": v, "is": module.IsPseudoVersion(v)}
		base, err := module.PseudoVersionBase(v)
		rec["base"], rec["baseErr"] = base, err != nil
		rev, err := module.PseudoVersionRev(v)
		rec["rev"], rec["revErr"] = rev, err != nil
		t, err := module.PseudoVersionTime(v)
		rec["time"], rec["timeErr"] = t.UTC().Format("2006-01-02T15:04:05Z"), err != nil
		emit("pseudo", rec)
	}
	for _, c := range checks {
		emit("check", map[string]any{"path": c[0], "version": c[1], "err": errString(module.Check(c[0], c[1]))})
	}
	for _, v := range escapeVersions {
		esc, err := module.EscapeVersion(v)
		emit("escapeVersion", map[string]any{"v": v, "escaped": esc, "err": errString(err)})
	}
	for _, p := range paths {
		esc, err := module.EscapePath(p)
		rec := map[string]any{"path": p, "escaped": esc, "err": errString(err)}
		if err == nil {
			back, err := module.UnescapePath(esc)
			rec["back"], rec["backErr"] = back, errString(err)
		}
		emit("escapePath", rec)
	}
	for _, g := range globs {
		emit("glob", map[string]any{"patterns": g[0], "target": g[1], "match": module.MatchPrefixPatterns(g[0], g[1])})
	}
	for _, m := range matches {
		ok, err := path.Match(m[0], m[1])
		emit("match", map[string]any{"pattern": m[0], "name": m[1], "match": ok, "err": errString(err)})
	}
	fmt.Fprintln(os.Stderr, "xmodvectors: done")
}
