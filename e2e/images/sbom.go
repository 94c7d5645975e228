package images

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The SPDX 2.3 JSON subset the SBOMs use.
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
	Comment  string   `json:"comment,omitempty"`
}

type spdxPackage struct {
	Name             string         `json:"name"`
	SPDXID           string         `json:"SPDXID"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	DownloadLocation string         `json:"downloadLocation"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
	Comment          string         `json:"comment,omitempty"`
	PrimaryPurpose   string         `json:"primaryPackagePurpose,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]`)

func spdxID(kind, name, version string) string {
	return "SPDXRef-" + kind + "-" + spdxIDUnsafe.ReplaceAllString(name+"-"+version, "-")
}

// SPDX is an SPDX 2.3 JSON SBOM of the Go binary at bin, built for p: the
// binary itself (with its SHA-256), the Go toolchain, its main module and
// every module linked into it, from the build information the Go linker
// embeds. It holds no time or random value (created is the Unix epoch, the
// namespace derives from the binary's digest), so a reproducible binary
// gives the same SBOM.
func SPDX(bin string, img Image, version string, p v1.Platform) ([]byte, error) {
	raw, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", bin, err)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("failed to read the build information of %s: %w", bin, err)
	}
	sum := sha256.Sum256(raw)
	digest := hex.EncodeToString(sum[:])
	binID := spdxID("File", img.Binary, p.OS+"-"+p.Architecture)
	doc := spdxDoc{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              fmt.Sprintf("%s %s %s/%s", img.Binary, version, p.OS, p.Architecture),
		DocumentNamespace: "https://meshcsi.io/spdx/" + img.Binary + "/" + digest,
		CreationInfo: spdxCreation{
			Created:  "1970-01-01T00:00:00Z",
			Creators: []string{"Tool: meshcsi-build-images"},
			Comment:  "Modules from the Go build information of the binary (go version -m).",
		},
		DocumentDescribes: []string{binID},
	}
	var settings []string
	for _, s := range info.Settings {
		settings = append(settings, s.Key+"="+s.Value)
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		Name: img.Binary, SPDXID: binID, VersionInfo: version, DownloadLocation: "NOASSERTION",
		Checksums:      []spdxChecksum{{Algorithm: "SHA256", Value: digest}},
		Comment:        "Build settings: " + strings.Join(settings, " "),
		PrimaryPurpose: "APPLICATION",
	})
	add := func(name, ver, comment, rel string) {
		id := spdxID("Package", name, ver)
		pkg := spdxPackage{
			Name: name, SPDXID: id, VersionInfo: ver, DownloadLocation: "NOASSERTION", Comment: comment,
			ExternalRefs: []spdxRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/" + name + "@" + ver}},
		}
		if name == "stdlib" {
			pkg.ExternalRefs = []spdxRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/stdlib@" + ver}}
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, spdxRelationship{Element: binID, Type: rel, Related: id})
	}
	doc.Relationships = append(doc.Relationships, spdxRelationship{Element: "SPDXRef-DOCUMENT", Type: "DESCRIBES", Related: binID})
	add("stdlib", strings.TrimPrefix(info.GoVersion, "go"), "The Go toolchain's standard library and runtime.", "STATIC_LINK")
	mainVer := info.Main.Version
	if mainVer == "" || mainVer == "(devel)" {
		mainVer = version
	}
	add(info.Main.Path, mainVer, "The main module.", "CONTAINS")
	for _, m := range info.Deps {
		comment := "go.sum " + m.Sum
		if m.Replace != nil {
			comment = fmt.Sprintf("replaced by %s %s %s", m.Replace.Path, m.Replace.Version, m.Replace.Sum)
			if m.Replace.Version == "" {
				comment = "replaced by the local directory " + m.Replace.Path
			}
		}
		ver := m.Version
		if ver == "" || ver == "(devel)" {
			ver = version
		}
		add(m.Path, ver, comment, "STATIC_LINK")
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
