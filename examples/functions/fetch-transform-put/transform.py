"""fetch-transform-put: source -> transform -> sink.

* The worker downloads the job's source "sales" to $FAASD_SOURCES_DIR/sales
  (CSV with a header: region,amount).
* The credential "signing_key" is read from $FAASD_CREDENTIALS_FILE (a 0600
  JSON file that exists only during the run). It is never printed.
* The report goes to $FAASD_OUTPUT_DIR/report.csv; faasd.json maps the sink
  "report" to that file, so the worker uploads it to the job's sink "report".
* The result (in $FAASD_RESULT_FILE) summarises the run and carries an
  HMAC-SHA256 of the report made with the key, so the receiver can check it.
"""
import csv
import hashlib
import hmac
import io
import json
import os
import sys


def main():
    sources = os.environ["FAASD_SOURCES_DIR"]
    with open(os.path.join(sources, "sales"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    totals = {}
    for row in rows:
        totals[row["region"]] = totals.get(row["region"], 0) + float(row["amount"])

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["region", "total"])
    for region in sorted(totals):
        writer.writerow([region, f"{totals[region]:.2f}"])
    report = out.getvalue().encode()

    with open(os.environ["FAASD_CREDENTIALS_FILE"], encoding="utf-8") as f:
        key = json.load(f).get("signing_key")
    if not key:
        print("fetch-transform-put: the job has no credential 'signing_key'", file=sys.stderr)
        return 3

    with open(os.path.join(os.environ["FAASD_OUTPUT_DIR"], "report.csv"), "wb") as f:
        f.write(report)
    result = {
        "rows": len(rows),
        "regions": len(totals),
        "signature": hmac.new(key.encode(), report, hashlib.sha256).hexdigest(),
    }
    with open(os.environ["FAASD_RESULT_FILE"], "w", encoding="utf-8") as f:
        json.dump(result, f)
    print(f"processed {len(rows)} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
