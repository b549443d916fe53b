"""Request bodies checked against the published specs (jsonschema, Draft 4).

The specs are /work/shared/specs copies, found through $FAKE_VMM_SPECS or, by default,
tests/fakes/specs/ beside this package. Firecracker's schemas get additionalProperties: false
on every object that lists properties: its serde types are deny_unknown_fields, so an unknown
field is a 400 although the swagger does not say so. Cloud Hypervisor ignores unknown fields.
"""
import copy
import os

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def spec_path(name):
    d = os.environ.get("FAKE_VMM_SPECS") or os.path.join(os.path.dirname(HERE), "specs")
    return os.path.join(d, name)


def _deny_unknown(node):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node \
                and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            _deny_unknown(v)
    elif isinstance(node, list):
        for v in node:
            _deny_unknown(v)


class Schemas:
    """validate(name, obj) -> None or the first error (jsonschema.ValidationError)."""

    def __init__(self, filename, deny_unknown):
        with open(spec_path(filename)) as f:
            self.doc = yaml.safe_load(f)
        if "definitions" in self.doc:             # Swagger 2.0 (Firecracker)
            self.root = {"definitions": copy.deepcopy(self.doc["definitions"])}
            self.prefix = "#/definitions/"
        else:                                     # OpenAPI 3 (Cloud Hypervisor)
            self.root = {"components": copy.deepcopy(self.doc["components"])}
            self.prefix = "#/components/schemas/"
        if deny_unknown:
            _deny_unknown(self.root)
        self.validators = {}

    def validate(self, name, obj):
        v = self.validators.get(name)
        if v is None:
            schema = dict(self.root)
            schema["$ref"] = self.prefix + name
            v = self.validators[name] = jsonschema.Draft4Validator(schema)
        return jsonschema.exceptions.best_match(v.iter_errors(obj))

    def properties(self, name):
        d = self.root.get("definitions") or self.root["components"]["schemas"]
        return list(d[name].get("properties", {}))


def serde_message(err, schemas, name):
    """A jsonschema error in the words serde uses (Firecracker's fault_message text)."""
    v = err.validator
    where = "".join(".%s" % p for p in err.absolute_path)
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        known = ", ".join("`%s`" % p for p in err.schema.get("properties", {}))
        return "unknown field `%s`, expected one of %s" % (extra[0], known)
    if v == "required":
        missing = [r for r in err.validator_value if r not in err.instance]
        return "missing field `%s`" % missing[0]
    if v == "enum":
        return "unknown variant `%s`%s, expected one of %s" % (
            err.instance, where and " at " + where,
            ", ".join("`%s`" % x for x in err.validator_value))
    if v == "type":
        return "invalid type: %s, expected %s%s" % (
            _serde_kind(err.instance), err.validator_value, where and " at " + where)
    return "invalid value%s: %s" % (where and " at " + where, err.message)


def _serde_kind(x):
    if isinstance(x, bool):
        return "boolean `%s`" % str(x).lower()
    if isinstance(x, (int, float)):
        return "integer `%s`" % x
    if isinstance(x, str):
        return 'string "%s"' % x
    if x is None:
        return "null"
    return "map" if isinstance(x, dict) else "sequence"
