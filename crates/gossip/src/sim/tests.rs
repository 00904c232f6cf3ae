use super::scenarios::*;
use super::*;

#[test]
fn smoke() {
    let t = std::time::Instant::now();
    let r = run_scale(50, 1, &ScaleOptions::lan());
    eprintln!("{r:#?} in {:?}", t.elapsed());
}
