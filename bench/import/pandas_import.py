#!/usr/bin/env python3
"""The pandas + phonenumbers side of the import benchmark (see bench/README.md).

Does what `patron import customers FILE` does to a customers CSV, written the way a data
engineer would write it: read with pandas, clean each column with a per-value function
(`Series.map`, or a comprehension over two columns where a rule needs the row's country),
quarantine what does not parse, encrypt the personal fields with AES-256-GCM, compute
HMAC-SHA256 blind indexes of email and phone, and store everything in a fresh SQLite file
with `DataFrame.to_sql`.

    python pandas_import.py CUSTOMERS.csv OUT.sqlite [--master-key HEX]

With the same master key as Patron the ciphertexts open with Patron's key and the blind
indexes are Patron's, so the two outputs can be compared value by value.

Prints one JSON line: rows read, stored, rejected, quarantined entries, seconds, rows/s.
"""

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import sqlite3
import sys
import time
import unicodedata

import pandas as pd
import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Invalid(ValueError):
    """A value that cannot be standardized; it goes to the quarantine table."""


# --- Standardization rules -----------------------------------------------------------------

# The WHATWG (HTML5 <input type=email>) syntax, after lower-casing.
EMAIL_RE = re.compile(
    r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+"
)


def clean_email(raw):
    email = raw.lower()
    if not EMAIL_RE.fullmatch(email):
        raise Invalid("not a syntactically valid email address")
    return email


PLUS_PROVIDERS = {
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
    "icloud.com", "me.com", "mac.com", "protonmail.com", "proton.me", "fastmail.com",
}


def email_match_key(email):
    """The mailbox an address delivers to (what Patron's email blind index is of): large
    providers ignore `+tags`, Gmail also ignores dots."""
    local, domain = email.rsplit("@", 1)
    if domain == "googlemail.com":
        domain = "gmail.com"
    if domain in PLUS_PROVIDERS:
        local = local.split("+", 1)[0]
    if domain == "gmail.com":
        local = local.replace(".", "")
    return f"{local}@{domain}"


def clean_name(raw):
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        raise Invalid("empty")
    return name


COUNTRY_NAMES = {
    "china": "CN", "中国": "CN",
    "united states": "US", "usa": "US", "united states of america": "US",
    "united kingdom": "GB", "uk": "GB", "great britain": "GB",
    "germany": "DE", "deutschland": "DE",
    "france": "FR",
    "japan": "JP", "日本": "JP",
    "singapore": "SG",
    "australia": "AU",
}


def clean_country(raw):
    # Names first: "UK" looks like a code but is not ISO 3166 (GB is).
    code = COUNTRY_NAMES.get(raw.lower())
    if code is None and len(raw) == 2 and raw.isascii() and raw.isalpha():
        code = raw.upper()
    if code is None:
        raise Invalid("not an ISO 3166 country code or known country name")
    return code


def clean_phone(raw, region):
    # libphonenumber knows `00` as the international prefix only for some regions, so
    # `0086 138…` is spelled `+86 138…` first (Patron does the same).
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as e:
        raise Invalid(f"not a phone number ({e})") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid("not a valid number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


GENDERS = {
    "m": "M", "male": "M", "man": "M", "男": "M", "mr": "M",
    "f": "F", "female": "F", "woman": "F", "女": "F", "w": "F", "mrs": "F", "ms": "F",
    "x": "X", "other": "X", "diverse": "X", "non-binary": "X",
    "u": None, "unknown": None, "未知": None, "n/a": None, "-": None,
}


def clean_gender(raw):
    try:
        return GENDERS[raw.lower()]
    except KeyError:
        raise Invalid("unknown gender code") from None


MONTH_FIRST = {"US", "PH", "FM", "MH", "PW", "AS", "GU", "PR"}
EARLIEST_BIRTH = dt.date(1900, 1, 1)


def clean_birth_date(raw, country):
    text = raw.replace("年", "-").replace("月", "-").replace("日", "")
    # The country's slash order first; the other only when that is no real day (one reading).
    slashes = ("%m/%d/%Y", "%d/%m/%Y") if country in MONTH_FIRST else ("%d/%m/%Y", "%m/%d/%Y")
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", *slashes):
        try:
            day = dt.datetime.strptime(text, fmt).date()
            break
        except ValueError:
            continue
    else:
        raise Invalid("not a date in a known format, or not a real day")
    if day > dt.date.today() or day < EARLIEST_BIRTH:
        raise Invalid("birth date in the future or before 1900")
    return day.isoformat()


# --- Helpers ---------------------------------------------------------------------------------


def attempt(fn, *args):
    """(value, None) or (None, reason)."""
    try:
        return fn(*args), None
    except Invalid as e:
        return None, str(e)


def standardize(df, column, fn, quarantine, context=None):
    """Cleans the non-blank values of `column` with `fn` (given the `context` column's value
    too, or None where it has none); rejected values are appended to `quarantine` and become
    missing."""
    present = df[column] != ""
    if context is None:
        outcome = df.loc[present, column].map(lambda v: attempt(fn, v))
    else:
        part = df.loc[present]
        outcome = pd.Series(
            [
                attempt(fn, v, None if pd.isna(c) else c)
                for v, c in zip(part[column], part[context])
            ],
            index=part.index,
            dtype=object,
        )
    values = outcome.map(lambda o: o[0])
    reasons = outcome.map(lambda o: o[1])
    bad = reasons.notna()
    if bad.any():
        quarantine.append(
            pd.DataFrame(
                {
                    "row": df.loc[bad[bad].index, "row"],
                    "field": column,
                    "value": df.loc[bad[bad].index, column],
                    "reason": reasons[bad],
                    "whole_row": 0,
                }
            )
        )
    return values.reindex(df.index)


def derive(master, label):
    return hmac.new(master, label, hashlib.sha256).digest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="customers CSV")
    parser.add_argument("sqlite", help="SQLite file to create (must not exist)")
    parser.add_argument(
        "--master-key",
        default=os.environ.get("PATRON_MASTER_KEY"),
        help="64 hex characters, as Patron's (default: $PATRON_MASTER_KEY, else a random key)",
    )
    args = parser.parse_args()
    if os.path.exists(args.sqlite):
        sys.exit(f"error: {args.sqlite} already exists")

    start = time.perf_counter()
    master = bytes.fromhex(args.master_key) if args.master_key else os.urandom(32)
    aead = AESGCM(derive(master, b"patron/v1/encrypt"))
    index_key = derive(master, b"patron/v1/blind-index")

    def seal(text):
        nonce = os.urandom(12)
        return b"\x01" + nonce + aead.encrypt(nonce, text.encode(), None)

    def blind(kind, value):
        return hmac.new(index_key, kind.encode() + b"\0" + value.encode(), hashlib.sha256).digest()[:16]

    df = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    rows_read = len(df)
    df = df.apply(lambda col: col.str.strip())
    df["row"] = range(1, rows_read + 1)  # 1-based data row, as Patron numbers them
    quarantine = []

    # A row without its source and id in that source cannot be stored at all.
    missing = (df["source"] == "") | (df["source_id"] == "")
    if missing.any():
        rejected = df[missing]
        quarantine.append(
            pd.DataFrame(
                {
                    "row": rejected["row"],
                    "field": rejected["source"].map(lambda s: "source_id" if s else "source"),
                    "value": "",
                    "reason": "required value is missing",
                    "whole_row": 1,
                }
            )
        )
        df = df[~missing].copy()

    df["country"] = standardize(df, "country", clean_country, quarantine)

    # The full name, else first and last name joined.
    joined = (df["first_name"] + " " + df["last_name"]).str.strip()
    df["name"] = df["name"].where(df["name"] != "", joined)
    df["name"] = standardize(df, "name", clean_name, quarantine)

    df["email"] = standardize(df, "email", clean_email, quarantine)
    df["phone"] = standardize(df, "phone", clean_phone, quarantine, context="country")
    df["gender"] = standardize(df, "gender", clean_gender, quarantine)
    df["birth_date"] = standardize(df, "birth_date", clean_birth_date, quarantine, context="country")

    created = pd.to_datetime(df["created_at"], utc=True, errors="coerce", format="ISO8601")
    bad_created = created.isna() & (df["created_at"] != "")
    if bad_created.any():
        quarantine.append(
            pd.DataFrame(
                {
                    "row": df.loc[bad_created, "row"],
                    "field": "created_at",
                    "value": df.loc[bad_created, "created_at"],
                    "reason": "not a timestamp in a known format",
                    "whole_row": 0,
                }
            )
        )
    epoch = pd.Timestamp(0, tz="UTC")
    df["source_created_at"] = ((created - epoch) // pd.Timedelta(milliseconds=1)).astype("Int64")

    def address(line1, city, postal_code):
        if not line1 and not postal_code:
            return None
        parts = {
            "city": city or None,
            "line1": line1 or None,
            "line2": None,
            "postal_code": postal_code or None,
            "region": None,
        }
        return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))

    addresses = pd.Series(
        [address(*a) for a in zip(df["address_line1"], df["city"], df["postal_code"])],
        index=df.index,
        dtype=object,
    )

    # A source record appears once: the last row for a (source, source_id) wins.
    keep = ~df.duplicated(["source", "source_id"], keep="last")

    now = int(time.time() * 1000)
    out = pd.DataFrame(
        {
            "source": df["source"],
            "source_id": df["source_id"],
            "name_enc": df["name"].map(seal, na_action="ignore"),
            "email_enc": df["email"].map(seal, na_action="ignore"),
            "phone_enc": df["phone"].map(seal, na_action="ignore"),
            "birth_date_enc": df["birth_date"].map(seal, na_action="ignore"),
            "address_enc": addresses.map(seal, na_action="ignore"),
            "gender": df["gender"],
            "city": df["city"].replace("", None),
            "country": df["country"],
            "email_hash": df["email"].map(lambda e: blind("email", email_match_key(e)), na_action="ignore"),
            "phone_hash": df["phone"].map(lambda p: blind("phone", p), na_action="ignore"),
            "source_created_at": df["source_created_at"],
            "received_at": now,
        }
    )[keep]

    q = (
        pd.concat(quarantine, ignore_index=True)
        if quarantine
        else pd.DataFrame(columns=["row", "field", "value", "reason", "whole_row"])
    )
    q["value"] = q["value"].map(seal, na_action="ignore")
    q = q.sort_values("row", kind="stable")

    con = sqlite3.connect(args.sqlite)
    con.execute("PRAGMA journal_mode = WAL")
    blobs = {c: "BLOB" for c in out.columns if c.endswith(("_enc", "_hash"))}
    out.to_sql("source_records", con, index=False, chunksize=5000, dtype=blobs)
    con.execute("CREATE UNIQUE INDEX source_records_key ON source_records (source, source_id)")
    q.to_sql("quarantine", con, index=False, chunksize=5000, dtype={"value": "BLOB"})
    con.commit()
    con.close()
    elapsed = time.perf_counter() - start

    print(
        json.dumps(
            {
                "tool": "pandas",
                "read": rows_read,
                "stored": len(out),
                "rejected": int(missing.sum()),
                "quarantined": len(q),
                "quarantined_by_field": q["field"].value_counts().sort_index().to_dict(),
                "seconds": round(elapsed, 3),
                "rows_per_s": round(rows_read / elapsed, 1) if elapsed > 0 else None,
            }
        )
    )


if __name__ == "__main__":
    main()
