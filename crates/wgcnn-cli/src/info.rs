//! `wgcnn info`: adapters, the chosen one, and the limits and features the engine uses.

use anyhow::Result;
use clap::Args;
use serde_json::json;
use wgcnn::Engine;

#[derive(Args)]
pub struct InfoArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &InfoArgs, adapter: Option<&str>) -> Result<()> {
    let all = wgcnn::adapters();
    let engine = Engine::new(&crate::engine_options(adapter));
    let adapters: Vec<_> = all
        .iter()
        .map(|a| json!({"name": a.name, "backend": a.backend, "device_type": a.device_type, "driver": a.driver, "driver_info": a.driver_info}))
        .collect();
    let (chosen, limits, features, subgroups) = match &engine {
        Ok(e) => {
            let a = e.adapter_info();
            let l = e.limits();
            let f = e.adapter_features();
            (
                json!({"name": a.name, "backend": a.backend, "device_type": a.device_type, "driver": a.driver, "driver_info": a.driver_info}),
                json!({
                    "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
                    "max_buffer_size": l.max_buffer_size,
                    "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
                    "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
                    "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
                    "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
                }),
                json!({
                    "timestamp_query": f.contains(wgpu::Features::TIMESTAMP_QUERY),
                    "timestamp_query_inside_passes": f.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
                    "shader_f16": f.contains(wgpu::Features::SHADER_F16),
                    "subgroup": f.contains(wgpu::Features::SUBGROUP),
                    "pipeline_cache": f.contains(wgpu::Features::PIPELINE_CACHE),
                }),
                subgroup_report(e),
            )
        }
        Err(_) => (
            serde_json::Value::Null,
            serde_json::Value::Null,
            serde_json::Value::Null,
            serde_json::Value::Null,
        ),
    };
    if args.json {
        let mut out = json!({"adapters": adapters, "chosen": chosen, "limits": limits, "features": features, "subgroups": subgroups});
        if let Err(e) = &engine {
            out["error"] = json!(e.to_string());
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("adapters ({}):", all.len());
        for a in &all {
            println!(
                "  - {} [{} {}] driver: {} {}",
                a.name, a.backend, a.device_type, a.driver, a.driver_info
            );
        }
        match &engine {
            Ok(_) => {
                println!(
                    "chosen: {} ({}, {} {})",
                    chosen["name"].as_str().unwrap_or(""),
                    chosen["backend"].as_str().unwrap_or(""),
                    chosen["driver"].as_str().unwrap_or(""),
                    chosen["driver_info"].as_str().unwrap_or("")
                );
                for (title, section) in [
                    ("limits used", &limits),
                    ("features", &features),
                    ("subgroups", &subgroups),
                ] {
                    print_section(title, section);
                }
            }
            Err(e) => println!("chosen: none ({e})"),
        }
    }
    engine.map(|_| ()).map_err(Into::into)
}

/// `title:` then one `  key: value` line per field, strings without their JSON quotes.
fn print_section(title: &str, section: &serde_json::Value) {
    println!("{title}:");
    for (k, v) in section.as_object().into_iter().flatten() {
        match v.as_str() {
            Some(text) => println!("  {k}: {text}"),
            None => println!("  {k}: {v}"),
        }
    }
}

/// The adapter's subgroup sizes and what the convolution and linear kernels make of them: the
/// subgroup kernels or the portable ones, and the subgroup kernels' lane layout and tile.
fn subgroup_report(engine: &Engine) -> serde_json::Value {
    use wgcnn::wgcnn_kernels::conv2d::{SubgroupForm, subgroup_form, subgroups_usable};
    let ctx = engine.context();
    let usable = subgroups_usable(ctx);
    let form = subgroup_form(ctx);
    let (layout, invocations) = if !usable {
        (
            "portable kernels (conv2d: 4 pixels x 16 or 4 channels per invocation, 64 invocations)"
                .to_string(),
            64,
        )
    } else {
        let g = form.groups();
        let how = match form {
            SubgroupForm::Broadcast => "subgroupBroadcast from lanes 0..7".to_string(),
            SubgroupForm::Wide { .. } => format!("{g} groups of 8 lanes, subgroupShuffle"),
        };
        (
            format!(
                "subgroup kernels, {} invocations per workgroup ({how}); \
                 each group of 8 lanes: 16 channels x 32 pixels (conv), 8 rows x 4 batch rows (linear)",
                8 * g
            ),
            8 * g,
        )
    };
    json!({
        "min_size": ctx.info.subgroup_min_size,
        "max_size": ctx.info.subgroup_max_size,
        "subgroup_kernels": usable,
        "form": if usable { form.name() } else { "none".to_string() },
        "workgroup_invocations": invocations,
        "kernels": layout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(subgroup_groups: Option<u32>) -> serde_json::Value {
        let engine = Engine::new(&wgcnn::EngineOptions {
            subgroup_groups,
            ..Default::default()
        })
        .expect("a GPU adapter (lavapipe in CI)");
        subgroup_report(&engine)
    }

    #[test]
    fn info_reports_subgroup_sizes_and_the_forced_wide_form() {
        let auto = report(None);
        println!("{auto}");
        let min = auto["min_size"].as_u64().expect("min_size");
        let max = auto["max_size"].as_u64().expect("max_size");
        assert!(min >= 1 && min <= max, "{auto}");
        if !auto["subgroup_kernels"]
            .as_bool()
            .expect("subgroup_kernels")
        {
            assert_eq!(auto["form"], "none");
            return;
        }
        let forced = report(Some(4));
        assert_eq!(forced["form"], "wide4");
        assert_eq!(forced["workgroup_invocations"], 32);
        let broadcast = report(Some(0));
        assert_eq!(broadcast["form"], "broadcast8");
        assert_eq!(broadcast["workgroup_invocations"], 8);
    }
}
