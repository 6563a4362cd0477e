//! Finds the libphonenumber metadata (XML) that ships inside the `phonenumber` crate this
//! build uses, and copies it into OUT_DIR, so each thread can load its own copy of the
//! metadata at run time (see `phone.rs`: the crate's built-in copy serializes all parsing
//! behind one lock). Any failure falls back to the built-in copy with a warning.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("PhoneNumberMetadata.xml");
    match find_in_registry()
        .or_else(|first| find_metadata().map_err(|second| format!("{first}; {second}")))
    {
        Ok(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            std::fs::copy(&path, &out).expect("copy phone metadata");
        }
        Err(why) => {
            println!("cargo:warning=phone metadata not found ({why}); phone parsing will use one shared lock");
            std::fs::write(&out, "").expect("write empty phone metadata");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The usual case: the version locked in Cargo.lock, unpacked in cargo's registry.
fn find_in_registry() -> Result<PathBuf, String> {
    let mut dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let lock = loop {
        let candidate = dir.join("Cargo.lock");
        if candidate.is_file() {
            break candidate;
        }
        if !dir.pop() {
            return Err("no Cargo.lock".into());
        }
    };
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).map_err(|e| e.to_string())?;
    let version = text
        .split("[[package]]")
        .find(|p| p.contains("name = \"phonenumber\""))
        .and_then(|p| {
            p.lines()
                .find_map(|l| l.trim().strip_prefix("version = \""))
        })
        .map(|v| v.trim_end_matches('"').to_owned())
        .ok_or("phonenumber is not in Cargo.lock")?;
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map_err(|_| "no CARGO_HOME or HOME")?;
    let registries =
        std::fs::read_dir(home.join("registry").join("src")).map_err(|e| e.to_string())?;
    registries
        .flatten()
        .map(|r| {
            r.path()
                .join(format!("phonenumber-{version}"))
                .join("assets")
                .join("PhoneNumberMetadata.xml")
        })
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "phonenumber-{version} is not unpacked in {}",
                home.display()
            )
        })
}

/// Elsewhere (vendored or git sources): ask cargo where the package is.
fn find_metadata() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").map_err(|e| e.to_string())?;
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?)
        .join("Cargo.toml");
    // Only this platform's packages: the others may not be downloaded, and this runs offline.
    let target = std::env::var("TARGET").map_err(|e| e.to_string())?;
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &target,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    let version = phonenumber_version(&meta)?;
    let package = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "phonenumber" && p["version"] == version.as_str())
        .ok_or("phonenumber is not among the packages")?;
    let dir = PathBuf::from(
        package["manifest_path"]
            .as_str()
            .ok_or("no manifest path")?,
    )
    .parent()
    .ok_or("manifest has no parent")?
    .to_owned();
    let xml = dir.join("assets").join("PhoneNumberMetadata.xml");
    if xml.is_file() {
        Ok(xml)
    } else {
        Err(format!("{} does not exist", xml.display()))
    }
}

/// The version of `phonenumber` the resolved graph actually uses.
fn phonenumber_version(meta: &serde_json::Value) -> Result<String, String> {
    let nodes = meta["resolve"]["nodes"]
        .as_array()
        .ok_or("no resolve graph")?;
    let ids: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n["id"].as_str())
        .filter(|id| id.contains("phonenumber"))
        .collect();
    let packages = meta["packages"].as_array().ok_or("no packages")?;
    packages
        .iter()
        .find(|p| p["name"] == "phonenumber" && ids.contains(&p["id"].as_str().unwrap_or("")))
        .and_then(|p| p["version"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| "phonenumber is not in the resolved graph".to_owned())
}
