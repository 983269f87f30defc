//! The periods of a context, found by a normalised periodogram: the
//! strongest local peaks of the power spectrum whose share of the total
//! power passes a Bonferroni-corrected test against white noise. They drive
//! the encoder's phase features and the head's seasonal fill.

/// The significant periods in steps, strongest first; 0 for a slot no
/// period passed the test for.
#[derive(Debug, Clone, PartialEq)]
pub struct Periods(pub Vec<usize>);

impl Periods {
    /// The strongest period, 0 if none passed.
    pub fn primary(&self) -> usize {
        self.0.first().copied().unwrap_or(0)
    }

    /// `[sin, cos]` of the phase of position `t` in each period (zeros for
    /// an empty slot).
    pub fn phase(&self, t: usize, out: &mut [f32]) {
        for (k, &p) in self.0.iter().enumerate() {
            if p == 0 {
                out[2 * k] = 0.0;
                out[2 * k + 1] = 0.0;
            } else {
                let angle = 2.0 * std::f32::consts::PI * t as f32 / p as f32;
                out[2 * k] = angle.sin();
                out[2 * k + 1] = angle.cos();
            }
        }
    }
}

/// Significance level of the test.
const ALPHA: f64 = 0.05;
/// Shortest period considered.
const MIN_PERIOD: usize = 2;

/// Detects up to `top_k` periods of `values`, whose unobserved points count
/// as the mean of the observed ones.
pub fn detect(values: &[f32], observed: &[bool], top_k: usize) -> Periods {
    let len = values.len();
    let (sum, count) = values
        .iter()
        .zip(observed)
        .filter(|(v, o)| **o && v.is_finite())
        .fold((0.0f32, 0usize), |(s, c), (v, _)| (s + v, c + 1));
    let fill = sum / count.max(1) as f32;
    let filled: Vec<f32> = values
        .iter()
        .zip(observed)
        .map(|(&v, &o)| if o && v.is_finite() { v } else { fill })
        .collect();
    let mean = filled.iter().sum::<f32>() / len as f32;
    let n_fft = len.max(2).next_power_of_two();
    let mut re: Vec<f64> = vec![0.0; n_fft];
    let mut im: Vec<f64> = vec![0.0; n_fft];
    for (r, v) in re.iter_mut().zip(&filled) {
        *r = f64::from(v - mean);
    }
    fft(&mut re, &mut im);
    // Power of the bins 1 ..= n_fft / 2 (the DC bin left out).
    let bins = n_fft / 2;
    let power: Vec<f64> = (1..=bins).map(|k| re[k] * re[k] + im[k] * im[k]).collect();
    let total = power.iter().sum::<f64>().max(1e-12);
    let share: Vec<f64> = power.iter().map(|p| p / total).collect();
    let max_period = (len / 2).max(2);
    let k_lo = (n_fft / max_period).saturating_sub(1);
    let k_hi = (bins - 1).min((n_fft / MIN_PERIOD.max(2)).saturating_sub(1));
    let n = bins.max(2) as f64;
    let threshold = (n / ALPHA).ln() / n;
    let mut peaks: Vec<(f64, usize)> = (1..bins.saturating_sub(1))
        .filter(|&i| i >= k_lo && i <= k_hi)
        .filter(|&i| share[i] > share[i - 1] && share[i] > share[i + 1])
        .filter(|&i| share[i] >= threshold)
        .map(|i| (share[i], i))
        .collect();
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut periods: Vec<usize> = peaks
        .iter()
        .take(top_k.min(bins))
        .map(|&(_, i)| (n_fft as f64 / (i + 1) as f64).round_ties_even() as usize)
        .collect();
    periods.resize(top_k.min(bins), 0);
    Periods(periods)
}

/// In-place iterative radix-2 FFT of a power-of-two length.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut size = 2;
    while size <= n {
        let angle = -2.0 * std::f64::consts::PI / size as f64;
        let (w_im, w_re) = angle.sin_cos();
        for start in (0..n).step_by(size) {
            let (mut c_re, mut c_im) = (1.0, 0.0);
            for k in 0..size / 2 {
                let a = start + k;
                let b = a + size / 2;
                let t_re = re[b] * c_re - im[b] * c_im;
                let t_im = re[b] * c_im + im[b] * c_re;
                re[b] = re[a] - t_re;
                im[b] = im[a] - t_im;
                re[a] += t_re;
                im[a] += t_im;
                let next = c_re * w_re - c_im * w_im;
                c_im = c_re * w_im + c_im * w_re;
                c_re = next;
            }
        }
        size <<= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_cycle_is_found_and_noise_is_not() {
        let len = 2048;
        let values: Vec<f32> = (0..len)
            .map(|t| (2.0 * std::f32::consts::PI * t as f32 / 24.0).sin())
            .collect();
        let observed = vec![true; len];
        let periods = detect(&values, &observed, 4);
        assert_eq!(periods.primary(), 24, "{periods:?}");
        // A constant has no power anywhere: no period passes.
        let flat = detect(&vec![1.0; len], &observed, 4);
        assert_eq!(flat, Periods(vec![0; 4]));
    }

    #[test]
    fn the_fft_matches_a_direct_transform() {
        let n = 16;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let (mut re, mut im) = (x.clone(), vec![0.0; n]);
        fft(&mut re, &mut im);
        for k in 0..n {
            let (mut a, mut b) = (0.0, 0.0);
            for (t, v) in x.iter().enumerate() {
                let angle = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                a += v * angle.cos();
                b += v * angle.sin();
            }
            assert!((re[k] - a).abs() < 1e-9 && (im[k] - b).abs() < 1e-9);
        }
    }
}
