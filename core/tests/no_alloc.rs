//! The hot path allocates nothing once its buffers exist: a velocity evaluation and a fused GD step,
//! counted with a global allocator wrapper (sequential, so only this thread's allocations count).
use faer::Mat;
use nff_core::network::Workspace;
use nff_core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = COUNT.with(|c| c.get());
    f();
    COUNT.with(|c| c.get()) - before
}

#[test]
fn velocities_and_fused_steps_do_not_allocate() {
    let n = 12;
    let x = Mat::from_fn(n, 3, |i, j| ((i * 3 + j) as f64 * 0.37).sin());
    let y = (0..n).map(|i| (i as f64 * 0.5).cos()).collect();
    let data = Dataset::new(x, y).unwrap();
    for reg in [
        Regularizer::None,
        Regularizer::L2 { lambda: 0.01 },
        Regularizer::GroupL1q {
            lambda: 0.01,
            q: 1.5,
        },
    ] {
        for arch in [Arch::Dnn, Arch::ResNet] {
            let problem = Problem::new(data.clone(), Activation::Tanh, Loss::Squared, reg).unwrap();
            let shape = Shape::new(arch, 3, 200, 3).unwrap();
            let mut net = Params::from_vec(
                shape,
                (0..shape.len())
                    .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
                    .collect(),
            )
            .unwrap();
            let mut ws = Workspace::new(shape, n);
            let mut vel = Params::zeros(shape);
            // Warm-up: the per-thread tile scratch is allocated on first use.
            problem.gd_step_fused(&mut net, 0.01, &mut ws, faer::Par::Seq);
            problem.velocities_into(&net, &mut ws, &mut vel, faer::Par::Seq);
            let a = allocations(|| {
                for _ in 0..3 {
                    problem.velocities_into(&net, &mut ws, &mut vel, faer::Par::Seq);
                    problem.gd_step_fused(&mut net, 0.01, &mut ws, faer::Par::Seq);
                }
            });
            assert_eq!(a, 0, "{arch:?} {reg:?}: {a} allocations in the hot path");
        }
    }
}
