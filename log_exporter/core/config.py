"""The YAML configuration: pydantic models, loading with located errors, and group patterns."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from log_exporter.errors import ConfigError

ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
ACCOUNT_ID_FIELD = "{account_id}"  # filled in with each discovered account's id
ACCOUNT_ID = re.compile(r"^\d{12}$")
OU_ID = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
ALL_REGIONS = "all"  # `regions: all`: the account's enabled regions, asked from AWS
REGION_FIELD = "{region}"  # in `destination.bucket`: filled in with each lane's region
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> int:
    """Seconds from `90`, `"90s"`, `"30m"`, `"12h"` or `"1d"`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 12h, 30m or 0")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str) and (m := DURATION.match(value)):
        return int(m.group(1)) * UNITS[m.group(2)]
    raise ValueError(f"expected a duration such as 12h, 30m or 0, got {value!r}")


Seconds = Annotated[int, BeforeValidator(parse_duration)]


def check_bucket_name(name: str) -> str:
    """Raise ValueError unless S3 would accept `name` as a general purpose bucket name."""
    if not BUCKET_NAME.match(name) or ".." in name or IP_ADDRESS.match(name):
        raise ValueError(
            f"{name!r} is not a valid S3 bucket name "
            "(3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)"
        )
    return name


def check_prefix(prefix: str) -> str:
    """Raise ValueError for a key prefix that would make ambiguous or unsafe keys."""
    if prefix == "":
        return prefix
    if prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix {prefix!r} must not start or end with '/'")
    for part in prefix.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"prefix {prefix!r} has an empty, '.' or '..' segment")
    return prefix


class GroupPattern:
    """One `groups`/`exclude` entry: an fnmatch glob (`*` also matches `/`) or `re:<regex>`."""

    def __init__(self, text: str) -> None:
        self.text = text
        if text.startswith("re:"):
            try:
                self._regex = re.compile(text[3:])
            except re.error as exc:
                raise ValueError(f"invalid regular expression {text[3:]!r}: {exc}") from None
        else:
            self._regex = re.compile(fnmatch.translate(text))

    def matches(self, name: str) -> bool:
        return self._regex.fullmatch(name) is not None

    @property
    def literal_prefix(self) -> str:
        """The longest fixed start of a glob (for DescribeLogGroups' prefix filter); '' for re:."""
        if self.text.startswith("re:"):
            return ""
        cut = len(self.text)
        for wildcard in "*?[":
            i = self.text.find(wildcard)
            if i != -1:
                cut = min(cut, i)
        return self.text[:cut]


class GroupSelector:
    """Which log groups of an account are archived: any `groups` pattern, and no `exclude` one."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str] = ()) -> None:
        self.include = [GroupPattern(p) for p in include]
        self.exclude = [GroupPattern(p) for p in exclude]

    def matches(self, name: str) -> bool:
        if any(p.matches(name) for p in self.exclude):
            return False
        return any(p.matches(name) for p in self.include)

    def list_prefixes(self) -> list[str]:
        """Prefixes for DescribeLogGroups: one per pattern, or [''] when any pattern needs all."""
        prefixes = sorted({p.literal_prefix for p in self.include})
        if "" in prefixes:
            return [""]
        # Drop prefixes covered by a shorter one, so no group is listed twice.
        kept: list[str] = []
        for p in prefixes:
            if not any(p.startswith(k) for k in kept):
                kept.append(p)
        return kept


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_buckets(v: str | dict[str, str]) -> str | dict[str, str]:
    """Raise ValueError unless `v` is a bucket name, a name holding `{region}`, or a non-empty
    map from region names to bucket names."""
    if isinstance(v, dict):
        if not v:
            raise ValueError("a map from regions to buckets needs at least one region")
        for region, name in v.items():
            if not REGION.match(region):
                raise ValueError(f"{region!r} is not an AWS region name (such as us-east-1)")
            if REGION_FIELD in name:
                raise ValueError(f"{region}: a bucket of the map cannot hold {REGION_FIELD}")
            try:
                check_bucket_name(name)
            except ValueError as exc:
                raise ValueError(f"{region}: {exc}") from None
        return v
    if v.count(REGION_FIELD) > 1:
        raise ValueError(f"{v!r} holds {REGION_FIELD} more than once")
    # the longest region name (ap-southeast-2 and kin) must still make a valid name
    check_bucket_name(v.replace(REGION_FIELD, "ap-southeast-2"))
    if REGION_FIELD in v:
        check_bucket_name(v.replace(REGION_FIELD, "us-east-1"))
    return v


class Destination(StrictModel):
    # one bucket; or one per region: a map {region: bucket} or a name holding `{region}`
    # (CloudWatch Logs exports only to a bucket in the log group's region)
    bucket: str | dict[str, str]
    prefix: str = "logs"
    start: date | None = None
    settle: Seconds = Field(default=12 * 3600, description="how long a window must have ended")
    period: Literal["day", "hour"] = "day"
    # `now`: every run also exports the settled part of unfinished periods (`run --through now`)
    through: Literal["now"] | None = None
    # a task still PENDING after this long is cancelled and tried again (`--pending-timeout`)
    pending_timeout: Seconds = Field(default=3600, gt=0)
    # a task in flight, or a busy slot waited on, this long is reported stuck (`--stuck-after`)
    stuck_after: Seconds = Field(default=6 * 3600, gt=0)
    # how windows are archived: `export` tasks only; `read` every window's events directly;
    # `auto` reads the small ones (see direct.py) while the export slot runs the others
    strategy: Literal["export", "auto", "read"] = "export"
    # the share of the account-region's read quota (FilterLogEvents: `read_quota` a second,
    # shared with every other reader there) the direct reads use
    read_share: float = Field(default=0.5, gt=0, le=1)
    read_quota: float = Field(default=5.0, gt=0)  # AWS's default; raise it if AWS raised yours
    # `auto`: a window is small when its group's stored bytes, spread over the days it holds,
    # come to at most this much a window
    read_max_bytes: int = Field(default=1 << 20, ge=0)
    # `auto` and `read`: a window whose read comes to more than this (message bytes + 26 an
    # event) is exported instead; it bounds the events a lane holds (see direct.py)
    read_window_max_bytes: int = Field(default=8 << 20, gt=0)

    _bucket = field_validator("bucket")(classmethod(lambda cls, v: check_buckets(v)))
    _prefix = field_validator("prefix")(classmethod(lambda cls, v: check_prefix(v)))

    @property
    def per_region(self) -> bool:
        """Whether each region names its own bucket (a map, or a name holding `{region}`)."""
        return isinstance(self.bucket, dict) or REGION_FIELD in self.bucket

    @property
    def single_bucket(self) -> str | None:
        """The one bucket of every lane, or None when each region names its own."""
        return None if self.per_region else str(self.bucket)

    def bucket_for(self, region: str) -> str | None:
        """The bucket a lane in `region` exports to; None: the map names none for it."""
        if isinstance(self.bucket, dict):
            return self.bucket.get(region)
        return self.bucket.replace(REGION_FIELD, region)

    def buckets(self, regions: Iterable[str] | None = None) -> list[str]:
        """The buckets lanes in `regions` export to, each once; without `regions`, every bucket
        the config names (none for a name holding `{region}`)."""
        if regions is not None:
            names = [b for b in (self.bucket_for(r) for r in regions) if b is not None]
        elif isinstance(self.bucket, dict):
            names = list(self.bucket.values())
        else:
            names = [] if self.per_region else [self.bucket]
        return list(dict.fromkeys(names))

    def no_bucket(self, region: str) -> str:
        """Why a lane in `region` has no bucket (the map names none for its region)."""
        named = ", ".join(self.bucket) if isinstance(self.bucket, dict) else ""
        return (
            f"no archive bucket for {region}: destination.bucket names buckets for {named} "
            f"only; add `{region}: <a bucket in {region}>` (CloudWatch Logs exports only to a "
            "bucket in the log group's region)"
        )


def check_roles(v: str | list[str] | None, *, template: bool = False) -> str | list[str] | None:
    """Raise ValueError unless `v` is a role ARN or a non-empty chain of them; with `template`,
    an ARN may hold `{account_id}` where the account id goes."""
    roles = [v] if isinstance(v, str) else (v or [])
    if isinstance(v, list) and not v:
        raise ValueError("a role chain needs at least one role ARN")
    for arn in roles:
        filled = arn.replace(ACCOUNT_ID_FIELD, "123456789012") if template else arn
        if not ROLE_ARN.match(filled):
            example = (
                f"arn:aws:iam::{ACCOUNT_ID_FIELD}:role/Name"
                if template
                else "arn:aws:iam::123456789012:role/Name"
            )
            raise ValueError(f"{arn!r} is not an IAM role ARN ({example})")
    return v


def check_regions(v: list[str] | str | None) -> list[str] | str | None:
    """Raise ValueError unless `v` is a non-empty list of region names, `all`, or None."""
    if isinstance(v, str):
        if v != ALL_REGIONS:
            raise ValueError(f"expected a list of regions or {ALL_REGIONS!r}, got {v!r}")
        return v
    if isinstance(v, list):  # anything else: pydantic's type check names it
        if not v:
            raise ValueError("regions must list at least one region, or be left out")
        for r in v:
            if isinstance(r, str) and not REGION.match(r):
                raise ValueError(f"{r!r} is not an AWS region name (such as us-east-1)")
        if len(set(v)) != len(v):
            twice = next(r for r in v if v.count(r) > 1)
            raise ValueError(f"region {twice!r} is listed twice")
    return v


def check_patterns(v: list[str]) -> list[str]:
    """Raise ValueError for an empty or invalid `groups`/`exclude` pattern."""
    for p in v:
        if not p:
            raise ValueError("a pattern cannot be empty")
        GroupPattern(p)
    return v


class LaneSelection(StrictModel):
    """What an `accounts:` entry and the `organization:` block share: which log groups of
    which regions, and the ExternalId passed to the last role."""

    external_id: str | None = Field(default=None, min_length=2, max_length=1224)
    regions: list[str] | Literal["all"] | None = None
    groups: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, v: list[str] | str | None) -> list[str] | str | None:
        return check_regions(v)

    @field_validator("groups", "exclude")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        return check_patterns(v)


class Account(LaneSelection):
    name: str = Field(min_length=1)
    role: str | list[str] | None = None
    # a profile of the AWS config files (SSO, keys): the account's session starts from it,
    # instead of the ambient credentials; its role chain, if any, is assumed from there
    profile: str | None = Field(default=None, min_length=1)

    @field_validator("role", mode="before")
    @classmethod
    def _self_is_ambient(cls, v: object) -> object:
        """c7n-logexporter's `role: self`: the ambient credentials, as no `role` is here."""
        return None if v == "self" else v

    @field_validator("role")
    @classmethod
    def _roles_are_arns(cls, v: str | list[str] | None) -> str | list[str] | None:
        return check_roles(v)

    @property
    def role_chain(self) -> list[str]:
        return [self.role] if isinstance(self.role, str) else list(self.role or [])

    @property
    def account_id(self) -> str | None:
        """The account whose logs this entry exports, named by the last role of its chain;
        None without a role: the ambient account, known only at run time (STS)."""
        chain = self.role_chain
        return chain[-1].split(":")[4] if chain else None

    @property
    def selector(self) -> GroupSelector:
        return GroupSelector(self.groups, self.exclude)


class Organization(LaneSelection):
    """The `organization:` block: every selected ACTIVE account of an AWS Organization becomes
    an account with this role (its id filled in), groups and regions (see organization.py)."""

    role: str | list[str]
    ous: list[str] = Field(default_factory=list)  # only accounts under these (nested included)
    accounts: list[str] = Field(default_factory=list)  # ids or names (globs) to include
    exclude_accounts: list[str] = Field(default_factory=list)  # ids or names (globs)
    tags: dict[str, str] = Field(default_factory=dict)  # account tags that must match
    discovery_role: str | None = None  # read Organizations as this role (else ambient)

    @field_validator("role")
    @classmethod
    def _role_template(cls, v: str | list[str]) -> str | list[str]:
        check_roles(v, template=True)
        chain = [v] if isinstance(v, str) else v
        if not any(ACCOUNT_ID_FIELD in arn for arn in chain):
            raise ValueError(
                f"the role (or a role of the chain) must hold {ACCOUNT_ID_FIELD}, such as "
                f"arn:aws:iam::{ACCOUNT_ID_FIELD}:role/LogExporterMember"
            )
        return v

    @field_validator("discovery_role")
    @classmethod
    def _discovery_role(cls, v: str | None) -> str | None:
        check_roles(v)
        return v

    @field_validator("ous")
    @classmethod
    def _ous(cls, v: list[str]) -> list[str]:
        for ou in v:
            if not OU_ID.match(ou):
                raise ValueError(f"{ou!r} is not an OU or root id (ou-abcd-12345678, r-abcd)")
        return v

    @field_validator("accounts", "exclude_accounts")
    @classmethod
    def _account_patterns(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p.strip():
                raise ValueError("an account id or name pattern cannot be empty")
        return v

    def account(self, account_id: str, name: str) -> Account:
        """The account this block makes of a discovered account: its role filled in."""
        chain = [
            arn.replace(ACCOUNT_ID_FIELD, account_id)
            for arn in ([self.role] if isinstance(self.role, str) else self.role)
        ]
        return Account(
            name=name,
            role=chain[0] if isinstance(self.role, str) else chain,
            external_id=self.external_id,
            regions=self.regions,
            groups=self.groups,
            exclude=self.exclude,
        )


class Config(StrictModel):
    destination: Destination
    accounts: list[Account] = Field(default_factory=list)
    organization: Organization | None = None
    _source: str = PrivateAttr(default="config")  # the file (or object) it was read from

    @property
    def source(self) -> str:
        """Where the config was read from, as its errors name it."""
        return self._source

    @model_validator(mode="after")
    def _accounts_or_organization(self) -> Config:
        if not self.accounts and self.organization is None:
            raise ValueError("`accounts` lists no account and there is no `organization` block")
        return self

    @field_validator("accounts")
    @classmethod
    def _unique_names(cls, accounts: list[Account]) -> list[Account]:
        seen: dict[str, int] = {}
        for i, account in enumerate(accounts):
            if account.name in seen:
                raise ValueError(
                    f"account name {account.name!r} is used twice "
                    f"(accounts[{seen[account.name]}] and accounts[{i}])"
                )
            seen[account.name] = i
        # An entry without `regions` runs in the ambient region: the same one for every such entry.
        clash = shared_lane(accounts, lambda a: a.regions or [AMBIENT_REGION])
        if clash:
            raise ValueError(clash)
        return accounts

    def select(self, names: Sequence[str]) -> list[Account]:
        """The accounts named (all when `names` is empty); an unknown name is an error."""
        return select_accounts(self.accounts, names)


def select_accounts(accounts: Sequence[Account], names: Sequence[str]) -> list[Account]:
    """The accounts named (all when `names` is empty); an unknown name is an error."""
    if not names:
        return list(accounts)
    known = {a.name: a for a in accounts}
    unknown = [n for n in names if n not in known]
    if unknown:
        shown = ", ".join(list(known)[:20]) + (", ..." if len(known) > 20 else "")
        raise ConfigError(f"--account {unknown[0]!r} is not in the config (known: {shown})")
    return [known[n] for n in names]


AMBIENT_REGION = "the ambient region"  # stands for the region of entries without `regions`


def shared_lane(
    accounts: Sequence[Account],
    regions_of: Callable[[Account], Sequence[str]],
    ambient_id: str | None = None,
) -> str | None:
    """Why two entries would be one lane (the same account and region), or None.

    One account and region has one export slot and one state object, so two entries on it
    would run as two lanes that drop each other's intents. An entry without `role` exports the
    ambient account: `ambient_id` once STS has told it, else it is compared only with the other
    entries without a role. `regions_of` gives an entry's effective regions."""
    seen: dict[str | None, dict[str, int]] = {}  # account id -> region -> entry
    for i, account in enumerate(accounts):
        # an entry with a profile and no role: that profile's account, known only at run time
        account_id = account.account_id or (
            f"of profile {account.profile}" if account.profile else ambient_id
        )
        regions = regions_of(account)
        of_account = seen.setdefault(account_id, {})
        for region in [ALL_REGIONS] if regions == ALL_REGIONS else regions:
            # `regions: all` meets every region of the account: any other entry of it clashes
            if region == ALL_REGIONS:
                met = [j for j in of_account.values() if j != i]
            else:
                found = (of_account.get(region), of_account.get(ALL_REGIONS))
                met = [j for j in found if j is not None and j != i]
            j = met[0] if met else of_account.setdefault(region, i)
            if j != i:
                who = (
                    f"the account {account_id}"
                    if account_id and account_id.startswith("of profile ")
                    else f"account {account_id}"
                    if account_id
                    else "the ambient account"
                )
                where = "every region" if region == ALL_REGIONS else region
                return (
                    f"accounts[{j}] ({accounts[j].name!r}) and accounts[{i}] ({account.name!r}) "
                    f"both export {who} in {where}: one account and region is one lane (one "
                    "export slot, one state); merge them into one entry"
                )
    return None


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("str", "list[str]", "none"):
            continue  # pydantic's union branch names are noise to a user
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate already-parsed YAML; errors name the place, e.g. `accounts[0].groups`."""
    if data is None:
        raise ConfigError(f"{source}: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'destination' and 'accounts'")
    if "subscription" in data:  # c7n-logexporter's `subscribe` command; it means nothing here
        raise ConfigError(
            f"{source}: subscription: c7n-logexporter's log subscriptions are not part of "
            "log-exporter, which only exports; remove the key (or keep it in a c7n-only file)"
        )
    if "accounts" not in data and "organization" not in data:
        raise ConfigError(f"{source}: accounts: is required (or an `organization` block)")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "is required"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: {_location(first['loc'])}: {message}{more}") from None
    config._source = source  # errors found later (by a run) name the file too
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(f"{p}: cannot be read (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: cannot be read: not UTF-8 text (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    return parse_config_text(text, str(p))


def parse_config_text(text: str | bytes, source: str) -> Config:
    """Parse YAML text and validate it; `source` names the file or object in every error."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{source}: YAML syntax error at {where}{exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}") from None
    return parse_config(data, source)
