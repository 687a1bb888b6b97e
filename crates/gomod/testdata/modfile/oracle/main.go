// Command modfileoracle prints, as JSON lines, what golang.org/x/mod/modfile.ParseLax (the
// parser the go command applies to every dependency's go.mod) and Go's go/version make of its
// inputs, for tests/modfile_vectors.rs. Run through ../make-vectors.sh.
//
//	modfileoracle lax FILE...      one line per file: {"file", "lax", "laxError"}
//	modfileoracle gover FILE       FILE lists Go versions, one a line; one output line per
//	                               version: {"v", "valid", "cmp"}, cmp[i] = Compare(v, list[i])
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/version"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// fileJSON has the shape of `go mod edit -json` output (cmd/go/internal/modcmd/edit.go), so one
// comparison serves both oracles.
type fileJSON struct {
	Module    moduleJSON
	Go        string      `json:",omitempty"`
	Toolchain string      `json:",omitempty"`
	GoDebug   []debugJSON `json:",omitempty"`
	Require   []requireJSON
	Exclude   []module.Version
	Replace   []replaceJSON
	Retract   []retractJSON
	Tool      []pathJSON
	Ignore    []pathJSON
}

type moduleJSON struct {
	Path       string
	Deprecated string `json:",omitempty"`
}

type debugJSON struct{ Key, Value string }

type requireJSON struct {
	Path     string
	Version  string `json:",omitempty"`
	Indirect bool   `json:",omitempty"`
}

type replaceJSON struct{ Old, New module.Version }

type retractJSON struct {
	Low       string `json:",omitempty"`
	High      string `json:",omitempty"`
	Rationale string `json:",omitempty"`
}

type pathJSON struct{ Path string }

func toJSON(f *modfile.File) *fileJSON {
	var j fileJSON
	if f.Module != nil {
		j.Module = moduleJSON{f.Module.Mod.Path, f.Module.Deprecated}
	}
	if f.Go != nil {
		j.Go = f.Go.Version
	}
	if f.Toolchain != nil {
		j.Toolchain = f.Toolchain.Name
	}
	for _, d := range f.Godebug {
		j.GoDebug = append(j.GoDebug, debugJSON{d.Key, d.Value})
	}
	for _, r := range f.Require {
		j.Require = append(j.Require, requireJSON{r.Mod.Path, r.Mod.Version, r.Indirect})
	}
	for _, x := range f.Exclude {
		j.Exclude = append(j.Exclude, x.Mod)
	}
	for _, r := range f.Replace {
		j.Replace = append(j.Replace, replaceJSON{r.Old, r.New})
	}
	for _, r := range f.Retract {
		j.Retract = append(j.Retract, retractJSON{r.Low, r.High, r.Rationale})
	}
	for _, t := range f.Tool {
		j.Tool = append(j.Tool, pathJSON{t.Path})
	}
	for _, i := range f.Ignore {
		j.Ignore = append(j.Ignore, pathJSON{i.Path})
	}
	return &j
}

func main() {
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	emit := func(v any) {
		if err := out.Encode(v); err != nil {
			panic(err)
		}
	}
	switch os.Args[1] {
	case "lax":
		for _, name := range os.Args[2:] {
			data, err := os.ReadFile(name)
			if err != nil {
				panic(err)
			}
			rec := map[string]any{"file": filepath.Base(name), "lax": nil, "laxError": nil}
			if f, err := modfile.ParseLax("go.mod", data, nil); err != nil {
				rec["laxError"] = err.Error()
			} else {
				rec["lax"] = toJSON(f)
			}
			emit(rec)
		}
	case "gover":
		fh, err := os.Open(os.Args[2])
		if err != nil {
			panic(err)
		}
		var list []string
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				list = append(list, line)
			}
		}
		for _, v := range list {
			cmp := make([]int, len(list))
			for i, w := range list {
				cmp[i] = version.Compare("go"+v, "go"+w)
			}
			emit(map[string]any{"v": v, "valid": version.IsValid("go" + v), "cmp": cmp})
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: modfileoracle lax FILE... | gover FILE")
		os.Exit(2)
	}
}
