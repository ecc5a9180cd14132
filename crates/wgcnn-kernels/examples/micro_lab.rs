//! TEMPORARY experiment: cost of loads by source on this driver.
use std::time::Instant;
use wgpu::util::DeviceExt;
fn main() {
    let src = std::fs::read_to_string("/tmp/lab/micro.wgsl").unwrap();
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    println!("limits: ubo {} push {} tex2d {} min_sg {} max_sg {}", adapter.limits().max_uniform_buffer_binding_size, adapter.limits().max_immediate_size, adapter.limits().max_texture_dimension_2d, adapter.get_info().subgroup_min_size, adapter.get_info().subgroup_max_size);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_features: wgpu::Features::SUBGROUP,
        required_limits: adapter.limits(),
        ..Default::default()
    })).unwrap();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(src.into()) });
    let n_el = 1usize << 22; // 4M floats = 16 MiB
    let data: Vec<f32> = (0..n_el).map(|i| (i % 13) as f32).collect();
    let usage = wgpu::BufferUsages::STORAGE;
    let xs = device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(&data), usage });
    let ub = device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(&data[..16384]), usage: wgpu::BufferUsages::UNIFORM });
    let tex = device.create_texture_with_data(&queue, &wgpu::TextureDescriptor {
        label: None, size: wgpu::Extent3d { width: 1024, height: 1024, depth_or_array_layers: 1 }, mip_level_count: 1, sample_count: 1,
        dimension: wgpu::TextureDimension::D2, format: wgpu::TextureFormat::Rgba32Float, usage: wgpu::TextureUsages::TEXTURE_BINDING, view_formats: &[] },
        wgpu::util::TextureDataOrder::LayerMajor, bytemuck::cast_slice(&data));
    let view = tex.create_view(&Default::default());
    let threads = 64 * 256u32;
    let out = device.create_buffer(&wgpu::BufferDescriptor { label: None, size: threads as u64 * 4, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    let steps = 4096u32;
    let params = [steps, (n_el as u32 - 1) & !3, 0, 0];
    let pb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(&params), usage: wgpu::BufferUsages::UNIFORM });
    for entry in ["arith", "ssbo", "ssbo4", "texl", "ubo", "bcast"] {
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor { label: None, layout: None, module: &module, entry_point: Some(entry), compilation_options: Default::default(), cache: None });
        let layout = pipeline.get_bind_group_layout(0);
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: pb.as_entire_binding() }];
        match entry {
            "ssbo" | "bcast" => entries.push(wgpu::BindGroupEntry { binding: 1, resource: xs.as_entire_binding() }),
            "ssbo4" => entries.push(wgpu::BindGroupEntry { binding: 2, resource: xs.as_entire_binding() }),
            "texl" => entries.push(wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::TextureView(&view) }),
            "ubo" => entries.push(wgpu::BindGroupEntry { binding: 4, resource: ub.as_entire_binding() }),
            _ => {}
        }
        entries.push(wgpu::BindGroupEntry { binding: 5, resource: out.as_entire_binding() });
        let bg = device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries });
        let run = || {
            let mut enc = device.create_command_encoder(&Default::default());
            { let mut pass = enc.begin_compute_pass(&Default::default()); pass.set_pipeline(&pipeline); pass.set_bind_group(0, &bg, &[]); pass.dispatch_workgroups(256, 1, 1); }
            queue.submit([enc.finish()]);
            device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        };
        run();
        let t = Instant::now();
        for _ in 0..3 { run(); }
        let dt = t.elapsed().as_secs_f64() / 3.0;
        let vals = threads as f64 * steps as f64 * 4.0;
        println!("{entry:6}: {:.2} ms, {:.3} ns per 8-lane vector of values (per thread-step 4 values) -> {:.2} Gvalues/s", dt * 1e3, dt * 1e9 / (vals / 8.0), vals / dt / 1e9);
    }
}
