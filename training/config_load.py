"""Config loading shared by every config dataclass (GRPOConfig, SFTConfig): YAML + `--field value`
flags, relative paths made absolute, one error type.

A field is declared with `setting(default, help)`; the help becomes the flag's help, so every knob
is documented where it is defined. Paths: a relative path written in the YAML is relative to the
YAML file's folder, one given as a flag to the current directory; `model` is only treated as a path
when that file or folder exists (else it is a hub id, or `tiny`).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A setting (or the data it names) is wrong; the CLI prints the message alone and exits 2."""


def setting(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


def load_yaml(cls: type[C], path: str | Path, overrides: list[str] | None = None, *, prog: str,
              path_fields: tuple[str, ...] = (), renamed: dict[str, str] | None = None) -> C:
    """Read a YAML mapping into `cls`, then apply `--field value` overrides; paths as the module doc says."""
    flags = vars(build_parser(cls, prog, renamed).parse_args(overrides or [], namespace=_Overrides()))
    return merge(cls, path, flags, path_fields=path_fields, renamed=renamed)


def merge(cls: type[C], path: str | Path | None, flags: dict[str, Any], *, path_fields: tuple[str, ...] = (),
          renamed: dict[str, str] | None = None) -> C:
    """`cls` from an optional YAML file and already-parsed flags (flags win); for a command whose
    parser adds its own arguments (positionals, legacy spellings) around `build_parser`'s."""
    renamed = renamed or {}
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not YAML: {err}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of config fields, got {type(raw).__name__}")
        check_names(cls, raw, f"{path}: unknown config field", renamed)
        resolve_paths(raw, Path(path).resolve().parent, path_fields)
    flags = dict(flags)
    check_names(cls, flags, "unknown flag", renamed)
    resolve_paths(flags, Path.cwd(), path_fields)
    raw.update(flags)
    return cls(**raw)


def resolve_paths(values: dict[str, Any], base: Path, path_fields: tuple[str, ...]) -> None:
    """Make relative path fields absolute against `base` (see the module doc for `model`)."""
    for key in path_fields:
        value = values.get(key)
        if not value or Path(value).is_absolute() or value == "tiny":
            continue
        if key != "model" or (base / value).exists():
            values[key] = str((base / value).resolve())


def check_names(cls: type, raw: dict[str, Any], what: str, renamed: dict[str, str]) -> None:
    for old, new in renamed.items():
        if old in raw:
            raise ConfigError(f"config field {old!r} was renamed {new!r}")
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"{what}s {unknown}; see the command's --help")


class _Overrides(argparse.Namespace):
    """Namespace that only holds what was actually passed on the command line."""


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parser_type(tp: Any) -> Any:
    """int | None → an int parser that also takes 'null'/'none'."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        inner = _parser_type(next(a for a in args if a is not type(None)))
        return lambda s: None if s.lower() in ("none", "null") else inner(s)
    return _parse_bool if tp is bool else tp


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, no usage dump (the CLI exits 2)
        raise ConfigError(message.replace("argument ", "flag "))


def build_parser(cls: type, prog: str, renamed: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """`--field-name` (and the YAML key spelling `--field_name`) for every field."""
    parser = _Parser(prog=prog, add_help=False, argument_default=argparse.SUPPRESS)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flags = [f"--{f.name.replace('_', '-')}"] + ([f"--{f.name}"] if "_" in f.name else [])
        parser.add_argument(*flags, dest=f.name, type=_parser_type(hints[f.name]), metavar=f.name.upper(),
                            help=f"{f.metadata['help']} (default: {f.default!r})")
    for old in (renamed or {}):
        parser.add_argument(f"--{old.replace('_', '-')}", f"--{old}", dest=old, help=argparse.SUPPRESS)
    return parser
