// Package manifest splits rendered multi-document YAML into objects and
// finds them by kind and name, for tests that assert on a chart's output.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Set is the objects of one rendering, in order.
type Set []*unstructured.Unstructured

// Parse splits YAML documents into objects, skipping empty documents.
func Parse(data string) (Set, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(data)))
	var out Set
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read yaml document: %w", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("failed to parse yaml document: %w\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Get returns the object of kind and name, or nil.
func (s Set) Get(kind, name string) *unstructured.Unstructured {
	for _, o := range s {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// Kind returns every object of kind.
func (s Set) Kind(kind string) Set {
	var out Set
	for _, o := range s {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// Into converts an object into a typed API struct.
func Into(o *unstructured.Unstructured, v any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, v, true); err != nil {
		return fmt.Errorf("failed to convert %s %s: %w", o.GetKind(), o.GetName(), err)
	}
	return nil
}
