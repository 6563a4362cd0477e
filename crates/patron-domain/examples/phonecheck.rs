//! Lists the phone numbers of a customer CSV that do not standardize, per country: a quick
//! check of generated or exported data.
fn main() {
    let mut rdr = csv::Reader::from_path(std::env::args().nth(1).unwrap()).unwrap();
    let h = rdr.headers().unwrap().clone();
    let pi = h.iter().position(|c| c == "phone").unwrap();
    let ci = h.iter().position(|c| c == "country").unwrap();
    let mut bad = std::collections::BTreeMap::new();
    for r in rdr.records() {
        let r = r.unwrap();
        let p = &r[pi];
        if p.is_empty() {
            continue;
        }
        let c = patron_domain::Country::parse(&r[ci]).ok();
        if patron_domain::Phone::parse(p, c).is_err() {
            let e: &mut Vec<String> = bad
                .entry(c.map(|c| c.as_str().to_owned()).unwrap_or_default())
                .or_default();
            if e.len() < 4 {
                e.push(p.to_owned());
            } else {
                e.push(String::new());
            }
        }
    }
    for (k, v) in bad {
        println!("{k}: {} {:?}", v.len(), &v[..4.min(v.len())]);
    }
}
