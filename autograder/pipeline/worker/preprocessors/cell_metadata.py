"""nbgrader's cell metadata checks with the JSON schema compiled once per process.

nbgrader's ``BaseMetadataValidator.validate_cell`` calls ``jsonschema.validate``
for every nbgrader cell, which checks the *schema itself* against its
metaschema each time: 5 ms a cell, about 0.1 s of worker CPU per ``rnn_cell``
submission across the precheck and the two ``CheckCellMetadata`` passes.
:class:`MetadataValidator` is nbgrader's own validator (every rule of its v3
format, the upgrade of older schema versions, the same errors) with only that
call replaced by a validator built once; :class:`CheckCellMetadata` is
nbgrader's preprocessor using it.
"""

from __future__ import annotations

import functools
import traceback

import jsonschema
from jsonschema.exceptions import best_match
from nbgrader.nbgraderformat import MetadataValidator as NbgraderValidator
from nbgrader.nbgraderformat import ValidationError
from nbgrader.nbgraderformat.common import (
    BaseMetadataValidator,
    SchemaTooNewError,
    SchemaTooOldError,
)
from nbgrader.preprocessors import CheckCellMetadata as NbgraderCheckCellMetadata

_COMPILED: dict[int, object] = {}
"""nbgrader schema version -> its jsonschema validator, built once per process."""


def _schema_validator(version: int, schema: dict):
    if version not in _COMPILED:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)  # once, where nbgrader checks it for every cell
        _COMPILED[version] = cls(schema)
    return _COMPILED[version]


class _CompiledSchema(BaseMetadataValidator):
    def validate_cell(self, cell) -> None:
        """As nbgrader's ``BaseMetadataValidator.validate_cell``, the schema checked once."""
        if "nbgrader" not in cell.metadata:
            return
        version = cell.metadata["nbgrader"].get("schema_version", 0)
        if version < self.schema_version:
            raise SchemaTooOldError(
                f"Outdated schema version: {version} (expected {self.schema_version})",
                version, self.schema_version)
        if version > self.schema_version:
            raise SchemaTooNewError(
                f"Schema version is too new: {version} (expected {self.schema_version})",
                version, self.schema_version)
        validator = _schema_validator(self.schema_version, self.schema)
        error = best_match(validator.iter_errors(cell.metadata["nbgrader"]))
        if error is not None:  # what jsonschema.validate raises
            raise error


class MetadataValidator(NbgraderValidator, _CompiledSchema):
    """nbgrader's current ``MetadataValidator`` with the schema compiled once."""


@functools.lru_cache(maxsize=1)
def metadata_validator() -> MetadataValidator:
    """One validator per process (it reads three JSON schemas from disk when built)."""
    return MetadataValidator()


class CheckCellMetadata(NbgraderCheckCellMetadata):
    """nbgrader's ``CheckCellMetadata`` with :func:`metadata_validator`."""

    def preprocess(self, nb, resources):
        try:
            metadata_validator().validate_nb(nb)
        except ValidationError:
            self.log.error(traceback.format_exc())
            msg = "Notebook failed to validate; the nbgrader metadata may be corrupted."
            self.log.error(msg)
            raise ValidationError(msg) from None
        return nb, resources
