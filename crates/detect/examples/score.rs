//! Prints the per-request signals of each stdin line (a debugging aid).
use std::io::BufRead;
fn main() {
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let t = line.replace("\\n", "\n");
        let s = moat_detect::signals::text_signals(&t, None);
        println!(
            "{:.2} {:?} jb={:.2} {:?} | {}",
            s.cot, s.cot_kind, s.jailbreak, s.category, line
        );
    }
}
