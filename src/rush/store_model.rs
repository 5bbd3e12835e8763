//! The busy period's customers, all from a seed: when each arrives (a Poisson process whose rate peaks in the
//! middle of the period), what they buy, how long the cashier takes, and how they pay (and what goes wrong).

use checkout_lanes::synthetic::SeededRng;
use checkout_storage::Provider;

/// A full lane clears about 40 baskets an hour (`payments.md`, "How busy a store gets").
const BASKETS_PER_LANE_HOUR: f64 = 40.0;
/// Arrivals at the peak, as a share of what the lanes can clear: a little over, so that lines form.
const PEAK_LOAD: f64 = 1.05;
/// Arrivals at the start and end of the period, as a share of the peak.
const SHOULDER: f64 = 0.5;
/// Wallet numbers from here up are the simulated provider's low-balance wallets.
pub const LOW_BALANCE_WALLETS_FROM: u16 = 9_900;

/// What goes wrong with a customer's payment the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    None,
    /// The code shown was made minutes ago (the app was left open): the provider refuses it, the customer
    /// refreshes it.
    ExpiredCode,
    /// The first wallet does not hold enough: the customer pays with another one.
    ShortBalance,
}

/// One customer.
#[derive(Debug, Clone)]
pub struct Customer {
    /// Simulated seconds from the start of the period.
    pub arrives_s: f64,
    /// Catalog positions of what they buy, in scanning order.
    pub items: Vec<usize>,
    /// The cashier's time before each item, simulated seconds (the first includes unloading the basket).
    pub item_gaps_s: Vec<f64>,
    /// From the last item to the payment code on show, simulated seconds.
    pub code_after_s: f64,
    /// From paid to the lane free for the next customer (bagging, receipt), simulated seconds.
    pub leaving_s: f64,
    /// The wallets they pay with, in order of trying: (provider, wallet number).
    pub wallets: Vec<(Provider, u16)>,
    pub trouble: Trouble,
    /// Seed of the frames their codes are shown in.
    pub seed: u64,
    /// The member they are (1 to the store's members), who shows their member code before the first item.
    pub member: Option<u32>,
    /// The coupon they show after their items (1 to the store's coupons; some try one already used).
    pub coupon: Option<u32>,
}

/// How the store's period is shaped.
#[derive(Debug, Clone)]
pub struct StoreModel {
    pub lanes: u32,
    pub duration_s: f64,
    pub seed: u64,
    /// Products in the catalog.
    pub catalog_len: usize,
    /// Wallets customers use, with their shares.
    pub providers: Vec<(Provider, f64)>,
    /// Share of customers whose first code has expired, and whose first wallet runs short.
    pub expired_share: f64,
    pub short_balance_share: f64,
    /// Members the store has (`M00000001` on), and the share of customers who are one of them.
    pub members: u32,
    pub member_share: f64,
    /// Coupons the store has issued, and the share of customers who show one.
    pub coupons: u32,
    pub coupon_share: f64,
}

/// Arrival rate at `t_s` as a share of the peak: a bell over the period on a shoulder.
pub fn arrival_shape(t_s: f64, duration_s: f64) -> f64 {
    let x = (t_s / duration_s.max(1.0) - 0.5) / 0.22;
    SHOULDER + (1.0 - SHOULDER) * (-x * x).exp()
}

/// Uniform in [0, 1), 53 bits.
fn unit(rng: &mut SeededRng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn between(rng: &mut SeededRng, low: f64, high: f64) -> f64 {
    low + (high - low) * unit(rng)
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SeededRng) -> f64 {
    let u1 = unit(rng).max(f64::MIN_POSITIVE);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Items in a basket: log-normal around 17 (mean about 20) with a long tail, 1 to 150.
fn basket_size(rng: &mut SeededRng) -> usize {
    let size = (17.0f64.ln() + 0.55 * normal(rng)).exp().round();
    size.clamp(1.0, 150.0) as usize
}

fn pick_provider(rng: &mut SeededRng, providers: &[(Provider, f64)], not: Option<Provider>) -> Provider {
    let choices: Vec<&(Provider, f64)> = providers.iter().filter(|(p, _)| Some(*p) != not).collect();
    let total: f64 = choices.iter().map(|(_, share)| share).sum();
    let mut roll = unit(rng) * total;
    for (provider, share) in &choices {
        if roll < *share {
            return *provider;
        }
        roll -= share;
    }
    choices.last().map_or(Provider::WeChatPay, |(p, _)| *p)
}

impl StoreModel {
    /// Customers per simulated second at the peak.
    pub fn peak_rate(&self) -> f64 {
        f64::from(self.lanes) * BASKETS_PER_LANE_HOUR * PEAK_LOAD / 3600.0
    }

    /// Every customer of the period, in arrival order: a non-homogeneous Poisson process drawn by thinning.
    pub fn customers(&self) -> Vec<Customer> {
        let mut rng = SeededRng::new(self.seed ^ 0x5eed_c057);
        let peak = self.peak_rate();
        let mut customers = Vec::new();
        if peak <= 0.0 || self.catalog_len == 0 {
            return customers;
        }
        let mut t = 0.0;
        loop {
            t += -(1.0 - unit(&mut rng)).ln() / peak;
            if t >= self.duration_s {
                return customers;
            }
            if unit(&mut rng) >= arrival_shape(t, self.duration_s) {
                continue;
            }
            customers.push(self.customer(t, &mut rng));
        }
    }

    fn customer(&self, arrives_s: f64, rng: &mut SeededRng) -> Customer {
        let size = basket_size(rng);
        let items = (0..size).map(|_| rng.range(0, self.catalog_len as u64 - 1) as usize).collect();
        // About 3 s an item; the first one after the basket is unloaded.
        let item_gaps_s =
            (0..size).map(|i| if i == 0 { between(rng, 4.0, 8.0) } else { between(rng, 2.0, 4.0) }).collect();
        let trouble = match unit(rng) {
            x if x < self.expired_share => Trouble::ExpiredCode,
            x if x < self.expired_share + self.short_balance_share => Trouble::ShortBalance,
            _ => Trouble::None,
        };
        let first = pick_provider(rng, &self.providers, None);
        let normal_wallet = |rng: &mut SeededRng| rng.range(0, u64::from(LOW_BALANCE_WALLETS_FROM) - 1) as u16;
        let wallets = if trouble == Trouble::ShortBalance {
            let low = rng.range(u64::from(LOW_BALANCE_WALLETS_FROM), 9_999) as u16;
            let other = pick_provider(rng, &self.providers, Some(first));
            vec![(first, low), (other, normal_wallet(rng))]
        } else {
            vec![(first, normal_wallet(rng))]
        };
        Customer {
            arrives_s,
            items,
            item_gaps_s,
            // About 35 to 40 s a customer besides the items: finding the code, bagging, the receipt.
            code_after_s: between(rng, 8.0, 14.0),
            leaving_s: between(rng, 20.0, 28.0),
            wallets,
            trouble,
            seed: rng.next_u64(),
            member: (self.members > 0 && unit(rng) < self.member_share)
                .then(|| rng.range(1, u64::from(self.members)) as u32),
            coupon: (self.coupons > 0 && unit(rng) < self.coupon_share)
                .then(|| rng.range(1, u64::from(self.coupons)) as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(lanes: u32, seed: u64) -> StoreModel {
        StoreModel {
            lanes,
            duration_s: 3600.0,
            seed,
            catalog_len: 20,
            providers: vec![(Provider::WeChatPay, 0.55), (Provider::Alipay, 0.38), (Provider::UnionPay, 0.07)],
            expired_share: 0.03,
            short_balance_share: 0.02,
            members: 200,
            member_share: 0.4,
            coupons: 100,
            coupon_share: 0.1,
        }
    }

    #[test]
    fn a_busy_hour_at_forty_lanes_brings_the_customers_a_full_store_serves_peaking_mid_hour() {
        let customers = model(40, 7).customers();
        // 40 lanes x 40 baskets x 1.05 at the peak, about 0.76 of that on average over the bell.
        assert!((1_000..1_500).contains(&customers.len()), "{} customers", customers.len());
        let in_quarter =
            |q: f64| customers.iter().filter(|c| c.arrives_s >= q * 900.0 && c.arrives_s < (q + 1.0) * 900.0).count();
        assert!(in_quarter(1.0) > in_quarter(0.0) && in_quarter(2.0) > in_quarter(3.0), "the peak is mid-hour");
        let items: usize = customers.iter().map(|c| c.items.len()).sum();
        let mean = items as f64 / customers.len() as f64;
        assert!((17.0..23.0).contains(&mean), "about 20 items a basket: {mean}");
        assert!(customers.iter().any(|c| c.items.len() >= 45), "a long tail of big baskets");
        assert!(customers.windows(2).all(|w| w[0].arrives_s <= w[1].arrives_s));
    }

    #[test]
    fn the_payment_mix_and_its_troubles_are_drawn_as_asked_and_the_same_from_a_seed() {
        let customers = model(40, 11).customers();
        let share =
            |f: &dyn Fn(&Customer) -> bool| customers.iter().filter(|c| f(c)).count() as f64 / customers.len() as f64;
        let wechat = share(&|c| c.wallets[0].0 == Provider::WeChatPay);
        assert!((0.48..0.62).contains(&wechat), "WeChat Pay share {wechat}");
        assert!(share(&|c| c.wallets[0].0 == Provider::UnionPay) > 0.02);
        let short = customers.iter().filter(|c| c.trouble == Trouble::ShortBalance);
        for c in short {
            assert!(c.wallets[0].1 >= LOW_BALANCE_WALLETS_FROM && c.wallets[1].1 < LOW_BALANCE_WALLETS_FROM);
            assert_ne!(c.wallets[0].0, c.wallets[1].0, "they pay with another wallet app");
        }
        assert!(share(&|c| c.trouble == Trouble::ExpiredCode) > 0.01);
        let members = share(&|c| c.member.is_some());
        assert!((0.34..0.46).contains(&members), "member share {members}");
        assert!(customers.iter().filter_map(|c| c.member).all(|m| (1..=200).contains(&m)));
        let again = model(40, 11).customers();
        assert_eq!(again.len(), customers.len());
        assert!(again.iter().zip(&customers).all(|(a, b)| a.items == b.items && a.wallets == b.wallets));
    }
}
