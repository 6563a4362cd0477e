#!/usr/bin/env python3
"""Customer records from pseudopeople's noisy simulated population, for the identity-resolution
benchmark on data Patron's own generator did not make (see bench/README.md).

pseudopeople (IHME, BSD-3-Clause) simulates a US population and writes it out as the records
of several administrative sources, each with realistic errors: typos, OCR and phonetic errors,
nicknames, a household member's value copied in, day and month swapped, digits miscopied,
blanks. Its wheel carries a sample population (about 10,000 people living, 16,000 ever born,
in one town), and every record keeps the simulant it came from, which is the truth here.

Each source stands for one of a retailer's channels, with the fields such a channel has:

    census   name, birth date, street address, ZIP, city, sex   (decennial census)
    acs, cps name, birth date, street address, ZIP, city, sex   (two household surveys)
    wic      name, birth date, street address, ZIP, city, sex   (a benefit programme)
    ssa      name, birth date, sex                              (social security; no address)
    w2       name, mailing address, ZIP, city                   (one record per job: repeats)
    tax1040  name, mailing address, ZIP, city                   (one tax return per filer)

Social security numbers are left out, as a retailer has none. Dates are written as each source
writes them (census mm/dd/yyyy, wic mmddyyyy, ssa yyyymmdd), turned into YYYY-MM-DD here
where they read as a date, and left as they are where they do not (a noised "07/71/1958"),
so that the import reports them.

    python pseudopeople_customers.py OUT_DIR [--seed 0] [--middle-initials]

With --middle-initials, a source that records a middle initial writes it after the first name
("Diana P"), as many shops' single first-name field holds it; social security records have
none (they keep a whole middle name, left out).

Writes OUT_DIR/customers.csv (Patron's customers columns) and OUT_DIR/truth.csv (source,
source_id, person).
"""

import argparse
import datetime
import os

import pandas as pd
import pseudopeople as psp

COLUMNS = [
    "source", "source_id", "first_name", "last_name", "gender", "birth_date", "address_line1",
    "city", "postal_code", "country",
]


def text(frame, col):
    """A column as stripped strings, missing as ''."""
    if col not in frame:
        return pd.Series([""] * len(frame), index=frame.index)
    return frame[col].astype("string").fillna("").str.strip()


def iso_date(value, order):
    """`value` as YYYY-MM-DD when it reads as a date in `order` (a strptime format), else as
    it is."""
    if not value:
        return ""
    try:
        return datetime.datetime.strptime(value, order).date().isoformat()
    except ValueError:
        return value


def address(frame, prefix=""):
    number = text(frame, f"{prefix}street_number")
    street = text(frame, f"{prefix}street_name")
    unit = text(frame, f"{prefix}unit_number")
    line = (number + " " + street + " " + unit).str.split().str.join(" ")
    if f"{prefix}po_box" in frame:
        box = text(frame, f"{prefix}po_box")
        line = line.where(line != "", ("PO Box " + box).where(box != "", ""))
    return line


def records(name, frame, *, dob_format=None, prefix="", with_sex=True, middle=False):
    out = pd.DataFrame(index=frame.index)
    out["source"] = name
    out["source_id"] = [f"{name}-{i}" for i in range(len(frame))]
    out["first_name"] = text(frame, "first_name")
    if middle and "middle_initial" in frame:
        out["first_name"] = (out["first_name"] + " " + text(frame, "middle_initial")).str.strip()
    out["last_name"] = text(frame, "last_name")
    out["gender"] = text(frame, "sex") if with_sex else ""
    if dob_format:
        out["birth_date"] = [iso_date(v, dob_format) for v in text(frame, "date_of_birth")]
    else:
        out["birth_date"] = ""
    out["address_line1"] = address(frame, prefix)
    out["city"] = text(frame, f"{prefix}city")
    out["postal_code"] = text(frame, f"{prefix}zipcode")
    out["country"] = "US"
    out["person"] = text(frame, "simulant_id")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="pseudopeople's noise seed")
    parser.add_argument(
        "--middle-initials", action="store_true", help="write middle initials after first names"
    )
    args = parser.parse_args()
    seed = args.seed
    kw = {"middle": args.middle_initials}

    parts = [
        records("census", psp.generate_decennial_census(seed=seed), dob_format="%m/%d/%Y",
                **kw),
        records("acs", psp.generate_american_community_survey(seed=seed),
                dob_format="%m/%d/%Y", **kw),
        records("cps", psp.generate_current_population_survey(seed=seed),
                dob_format="%m/%d/%Y", **kw),
        records("wic", psp.generate_women_infants_and_children(seed=seed),
                dob_format="%m%d%Y", **kw),
        records("ssa", psp.generate_social_security(seed=seed), dob_format="%Y%m%d", **kw),
        records("w2", psp.generate_taxes_w2_and_1099(seed=seed), prefix="mailing_address_",
                with_sex=False, **kw),
        records("tax1040", psp.generate_taxes_1040(seed=seed), prefix="mailing_address_",
                with_sex=False, **kw),
    ]
    # The SSA file has a record per event (birth, death) for the same person and number; a
    # death record repeats the person, as a second record would.
    both = pd.concat(parts, ignore_index=True)
    os.makedirs(args.out, exist_ok=True)
    both[COLUMNS].to_csv(os.path.join(args.out, "customers.csv"), index=False)
    both[["source", "source_id", "person"]].to_csv(os.path.join(args.out, "truth.csv"), index=False)
    people = both["person"].nunique()
    print(f"{len(both)} records of {people} people from {len(parts)} sources in {args.out}")


if __name__ == "__main__":
    main()
