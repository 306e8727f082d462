package fcdouble

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// definitionYAML is Firecracker's own API definition, v1.16.1 (Swagger
// 2.0, Apache-2.0), copied unchanged from ../shared/firecracker-api.
//
//go:embed firecracker-v1.16.1.yaml
var definitionYAML []byte

// DefinitionYAML is the API definition the double validates against.
func DefinitionYAML() []byte { return definitionYAML }

// schema is the part of a Swagger schema object the double checks.
type schema struct {
	Ref                  string             `yaml:"$ref"`
	Type                 string             `yaml:"type"`
	Required             []string           `yaml:"required"`
	Properties           map[string]*schema `yaml:"properties"`
	Items                *schema            `yaml:"items"`
	Enum                 []yaml.Node        `yaml:"enum"`
	Minimum              *float64           `yaml:"minimum"`
	Maximum              *float64           `yaml:"maximum"`
	AdditionalProperties *bool              `yaml:"additionalProperties"`
	// Description says, for Logger's level, that its values are
	// case-insensitive.
	Description string `yaml:"description"`
}

type parameter struct {
	Name     string  `yaml:"name"`
	In       string  `yaml:"in"`
	Required bool    `yaml:"required"`
	Schema   *schema `yaml:"schema"`
}

type operation struct {
	OperationID string      `yaml:"operationId"`
	Summary     string      `yaml:"summary"`
	Parameters  []parameter `yaml:"parameters"`
}

// API is the parsed definition: each path's operations by method, and
// the named schemas they refer to.
type API struct {
	Version     string
	paths       map[string]map[string]*operation // path template → method → op
	definitions map[string]*schema
}

// LoadAPI parses a Swagger 2.0 definition.
func LoadAPI(data []byte) (*API, error) {
	var doc struct {
		Info struct {
			Version string `yaml:"version"`
		} `yaml:"info"`
		Paths       map[string]map[string]*operation `yaml:"paths"`
		Definitions map[string]*schema               `yaml:"definitions"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("api definition: %w", err)
	}
	if len(doc.Paths) == 0 || len(doc.Definitions) == 0 {
		return nil, faultf("api definition: no paths or definitions")
	}
	return &API{Version: doc.Info.Version, paths: doc.Paths, definitions: doc.Definitions}, nil
}

// Route finds the operation for method and a request path, matching
// templates like /drives/{drive_id}; params holds the path's values.
func (a *API) Route(method, path string) (op *operation, template string, params map[string]string) {
	method = strings.ToLower(method)
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for tmpl, ops := range a.paths {
		tsegs := strings.Split(strings.Trim(tmpl, "/"), "/")
		if len(tsegs) != len(segs) {
			continue
		}
		p := map[string]string{}
		match := true
		for i, ts := range tsegs {
			if strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") && segs[i] != "" {
				p[ts[1:len(ts)-1]] = segs[i]
			} else if ts != segs[i] {
				match = false
				break
			}
		}
		if match {
			if o, ok := ops[method]; ok {
				return o, tmpl, p
			}
		}
	}
	return nil, "", nil
}

// bodySchema is the operation's body parameter, nil when it takes none.
func (o *operation) bodySchema() (*schema, bool) {
	for _, p := range o.Parameters {
		if p.In == "body" {
			return p.Schema, p.Required
		}
	}
	return nil, false
}

// ValidateBody checks a request body against op's body schema: well-
// formed JSON, required fields, types, enums, bounds, and no field the
// schema does not name. The message reads like Firecracker's
// deserialisation errors.
func (a *API) ValidateBody(op *operation, body []byte) error {
	s, required := op.bodySchema()
	if s == nil {
		return nil
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if required {
			return faultf("Empty request body")
		}
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return faultf("An error occurred when deserializing the json body of a request: %v", err)
	}
	if dec.More() {
		return faultf("An error occurred when deserializing the json body of a request: trailing characters")
	}
	if err := a.validate(s, v, ""); err != nil {
		return faultf("An error occurred when deserializing the json body of a request: %v", err)
	}
	return nil
}

func (a *API) resolve(s *schema) (*schema, error) {
	for s != nil && s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/definitions/")
		if !ok {
			return nil, faultf("unsupported $ref %q", s.Ref)
		}
		s = a.definitions[name]
		if s == nil {
			return nil, faultf("unknown definition %q", name)
		}
	}
	return s, nil
}

// validate checks v, a decoded JSON value, against s (its $ref resolved
// first); at is v's field path in the body, "" for the body itself.
func (a *API) validate(s *schema, v any, at string) error {
	s, err := a.resolve(s)
	if err != nil {
		return err
	}
	name := at
	if name == "" {
		name = "body"
	}
	typ := s.Type
	if typ == "" && s.Properties != nil {
		typ = "object"
	}
	switch typ {
	case "object":
		return a.validateObject(s, v, at, name)
	case "array":
		return a.validateArray(s, v, name)
	case "string":
		return validateString(s, v, name)
	case "integer":
		return validateInteger(s, v, name)
	case "number":
		if _, ok := v.(json.Number); !ok {
			return faultf("invalid type: %s, expected a number at %s", jsonType(v), name)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return faultf("invalid type: %s, expected a boolean at %s", jsonType(v), name)
		}
	}
	return nil
}

// validateObject checks v is an object whose fields, in name order, are
// the schema's and valid, then that none it requires is missing. at is
// the object's field path, name how messages call it.
func (a *API) validateObject(s *schema, v any, at, name string) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return faultf("invalid type: %s, expected struct at %s", jsonType(v), name)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ps, ok := s.Properties[k]
		if ok && obj[k] == nil && !contains(s.Required, k) {
			continue // an optional field may be null
		}
		if !ok {
			if s.AdditionalProperties != nil && *s.AdditionalProperties {
				continue
			}
			return faultf("unknown field `%s`, expected one of %s", k, fieldList(s))
		}
		if err := a.validate(ps, obj[k], join(at, k)); err != nil {
			return err
		}
	}
	// As serde: unknown and ill-typed fields are found while reading,
	// missing ones at the end.
	for _, req := range s.Required {
		if _, ok := obj[req]; !ok {
			return faultf("missing field `%s` at %s", req, name)
		}
	}
	return nil
}

// validateArray checks v is an array whose items are each valid against
// the schema's items.
func (a *API) validateArray(s *schema, v any, name string) error {
	arr, ok := v.([]any)
	if !ok {
		return faultf("invalid type: %s, expected a sequence at %s", jsonType(v), name)
	}
	for i, item := range arr {
		if err := a.validate(s.Items, item, fmt.Sprintf("%s[%d]", name, i)); err != nil {
			return err
		}
	}
	return nil
}

// validateString checks v is a string and, when the schema has an enum,
// one of its values (in any case, when the schema's description says
// they are case-insensitive).
func validateString(s *schema, v any, name string) error {
	str, ok := v.(string)
	if !ok {
		return faultf("invalid type: %s, expected a string at %s", jsonType(v), name)
	}
	if len(s.Enum) > 0 {
		fold := strings.Contains(s.Description, "case-insensitive")
		var allowed []string
		for _, n := range s.Enum {
			// The node's text, not its YAML 1.1 reading: "Off" is a
			// string here, not false.
			allowed = append(allowed, n.Value)
			if n.Value == str || fold && strings.EqualFold(n.Value, str) {
				return nil
			}
		}
		return faultf("unknown variant `%s`, expected one of `%s` at %s", str, strings.Join(allowed, "`, `"), name)
	}
	return nil
}

// validateInteger checks v is a whole number within the schema's bounds,
// and not negative when the schema sets no minimum.
func validateInteger(s *schema, v any, name string) error {
	n, ok := v.(json.Number)
	if !ok {
		return faultf("invalid type: %s, expected an integer at %s", jsonType(v), name)
	}
	i, err := n.Int64()
	if err != nil {
		return faultf("invalid type: floating point `%s`, expected an integer at %s", n, name)
	}
	if s.Minimum != nil && float64(i) < *s.Minimum || s.Maximum != nil && float64(i) > *s.Maximum {
		return faultf("invalid value: integer `%d`, expected %s at %s", i, bounds(s), name)
	}
	if i < 0 && s.Minimum == nil {
		// Firecracker's integers are unsigned.
		return faultf("invalid value: integer `%d`, expected an unsigned integer at %s", i, name)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func fieldList(s *schema) string {
	var names []string
	for k := range s.Properties {
		names = append(names, "`"+k+"`")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func bounds(s *schema) string {
	lo, hi := "", ""
	if s.Minimum != nil {
		lo = fmt.Sprint(*s.Minimum)
	}
	if s.Maximum != nil && *s.Maximum < math.MaxInt64 {
		hi = fmt.Sprint(*s.Maximum)
	}
	switch {
	case lo != "" && hi != "":
		return "a value in " + lo + ".." + hi
	case lo != "":
		return "at least " + lo
	default:
		return "at most " + hi
	}
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("boolean `%v`", x)
	case json.Number:
		return fmt.Sprintf("number `%s`", x)
	case string:
		return fmt.Sprintf("string %q", x)
	case []any:
		return "sequence"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}
