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
    let (chosen, limits, features) = match &engine {
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
            )
        }
        Err(_) => (
            serde_json::Value::Null,
            serde_json::Value::Null,
            serde_json::Value::Null,
        ),
    };
    if args.json {
        let mut out =
            json!({"adapters": adapters, "chosen": chosen, "limits": limits, "features": features});
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
                println!("limits used:");
                if let Some(m) = limits.as_object() {
                    for (k, v) in m {
                        println!("  {k}: {v}");
                    }
                }
                println!("features:");
                if let Some(m) = features.as_object() {
                    for (k, v) in m {
                        println!("  {k}: {v}");
                    }
                }
            }
            Err(e) => println!("chosen: none ({e})"),
        }
    }
    engine.map(|_| ()).map_err(Into::into)
}
