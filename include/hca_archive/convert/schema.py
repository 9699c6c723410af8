"""10x read layouts: where the cell barcode and the UMI sit in R1."""

from __future__ import annotations

from collections import namedtuple

from hca_archive.convert.errors import ConversionError


class Schema(namedtuple("Schema", "name barcode_length umi_length")):
    __slots__ = ()
    name: str
    barcode_length: int
    umi_length: int

    @property
    def barcode_umi_length(self) -> int:
        return self.barcode_length + self.umi_length


SCHEMAS = {s.name: s for s in (Schema("10xV2", 16, 10), Schema("10xV3", 16, 12))}


def get_schema(name: str) -> Schema:
    try:
        return SCHEMAS[name]
    except KeyError:
        known = ", ".join(SCHEMAS)
        raise ConversionError(f"unknown 10x schema {name!r} (known: {known})") from None
