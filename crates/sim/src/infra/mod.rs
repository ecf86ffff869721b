//! Where requests come from: networks, addresses, client software and sign-up identity.
//!
//! [`Infra`] indexes the static tables once per run; [`Access`] describes how one account
//! reaches the API (household broadband, mobile carrier NAT, an organisation's NAT block,
//! fixed datacenter addresses, or a campaign's rotating residential proxy pool) and turns into
//! a concrete address per request. Not about what is asked: prompts live in `text` and the
//! populations.

pub(crate) mod clients;
pub(crate) mod identity;
pub(crate) mod networks;

use networks::{v4_from_hash, v4_text, v6_from_hash, NetKind, Network, COUNTRIES, NETWORKS};

use crate::rng::{hash, pick_weighted, unit, SimRng};

/// Carrier-grade NAT egress addresses per mobile network: many users share each.
const CGNAT_POOL: u64 = 64;

/// Per-run index of the network tables.
#[derive(Debug, Clone)]
pub(crate) struct Infra {
    seed: u64,
    /// Network indices by country index and kind.
    by_country: Vec<[Vec<u16>; 5]>,
    /// Datacenter network indices.
    datacenters: Vec<u16>,
    /// Residential and mobile networks with cumulative proxy-exit weights.
    proxy_nets: Vec<u16>,
    proxy_cum: Vec<f64>,
}

fn kind_index(k: NetKind) -> usize {
    match k {
        NetKind::Home => 0,
        NetKind::Mobile => 1,
        NetKind::Business => 2,
        NetKind::University => 3,
        NetKind::Datacenter => 4,
    }
}

/// The address a request came from, with the provider's enrichment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub ip: String,
    pub asn: u32,
    pub country: &'static str,
}

/// How one account reaches the API.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// Household broadband: one address per household, renewed every `lease_days`.
    Home {
        net: u16,
        house: u64,
        lease_days: u16,
    },
    /// A mobile carrier: IPv4 through a shared carrier-grade NAT pool, or a per-device IPv6
    /// prefix with a fresh interface id per session.
    Mobile { net: u16, device: u64, v6: bool },
    /// An organisation's NAT block of `size` consecutive addresses from `base`.
    Nat { net: u16, base: u32, size: u8 },
    /// One or more fixed addresses (servers, VPN exits).
    Fixed { ips: Box<[(u16, u32)]> },
    /// A campaign's rotating residential proxy pool of `size` exits named by `scope`.
    Rotating { scope: u64, size: u64 },
}

impl Infra {
    /// Indexes the tables for one run.
    pub(crate) fn new(seed: u64) -> Infra {
        let mut by_country: Vec<[Vec<u16>; 5]> =
            COUNTRIES.iter().map(|_| Default::default()).collect();
        let mut datacenters = Vec::new();
        let mut proxy_nets = Vec::new();
        let mut proxy_w = Vec::new();
        for (i, n) in NETWORKS.iter().enumerate() {
            let i = i as u16;
            if let Some(ci) = COUNTRIES.iter().position(|c| c.code == n.country) {
                by_country[ci][kind_index(n.kind)].push(i);
            }
            if n.kind == NetKind::Datacenter {
                datacenters.push(i);
            }
        }
        for (ci, c) in COUNTRIES.iter().enumerate() {
            let res: Vec<u16> = by_country[ci][0]
                .iter()
                .chain(by_country[ci][1].iter())
                .copied()
                .collect();
            for &n in &res {
                proxy_nets.push(n);
                proxy_w.push(c.proxy_weight / res.len() as f64);
            }
        }
        let total: f64 = proxy_w.iter().sum();
        let mut acc = 0.0;
        let proxy_cum = proxy_w
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Infra {
            seed,
            by_country,
            datacenters,
            proxy_nets,
            proxy_cum,
        }
    }

    /// A country index for an ordinary user.
    pub(crate) fn benign_country(&self, rng: &mut SimRng) -> usize {
        let w: Vec<f64> = COUNTRIES.iter().map(|c| c.benign_weight).collect();
        pick_weighted(rng, &w)
    }

    /// A network of `kind` in country `ci`, falling back to the United States (index 0),
    /// which has every kind.
    pub(crate) fn network_in(&self, ci: usize, kind: NetKind, rng: &mut SimRng) -> u16 {
        let k = kind_index(kind);
        let list = match self.by_country.get(ci) {
            Some(l) if !l[k].is_empty() => &l[k],
            _ => &self.by_country[0][k],
        };
        list.get(rand::Rng::gen_range(rng, 0..list.len().max(1)))
            .copied()
            .unwrap_or(0)
    }

    /// A datacenter network, any country.
    pub(crate) fn datacenter(&self, rng: &mut SimRng) -> u16 {
        self.datacenters
            .get(rand::Rng::gen_range(rng, 0..self.datacenters.len().max(1)))
            .copied()
            .unwrap_or(0)
    }

    /// A random address of network `net` (for fixed and NAT assignments).
    pub(crate) fn address(&self, net: u16, rng: &mut SimRng) -> u32 {
        v4_from_hash(network(net), rand::Rng::gen(rng))
    }

    /// The endpoint of a request at `ts` (ms) by an account with `access`; `session` varies
    /// what changes per session (CGNAT exit, IPv6 interface id) and `rng` what changes per
    /// request (rotation, NAT exit).
    pub(crate) fn endpoint(
        &self,
        access: &Access,
        ts: i64,
        session: u64,
        rng: &mut SimRng,
    ) -> Endpoint {
        let (net, ip) = match access {
            Access::Home {
                net,
                house,
                lease_days,
            } => {
                let lease_ms = i64::from((*lease_days).max(1)) * 86_400_000;
                // Each household renews at its own phase, so renewals are not synchronized.
                let phase = (*house % lease_ms as u64) as i64;
                let epoch = (ts + phase).div_euclid(lease_ms) as u64;
                let n = network(*net);
                (
                    *net,
                    v4_text(v4_from_hash(n, hash(&[self.seed, *house, epoch]))),
                )
            }
            Access::Mobile { net, device, v6 } => {
                let n = network(*net);
                match (v6, n.v6) {
                    (true, Some(prefix)) => (
                        *net,
                        v6_from_hash(prefix, *device, hash(&[*device, session])).to_string(),
                    ),
                    _ => {
                        let slot = hash(&[*device, session]) % CGNAT_POOL;
                        let h = hash(&[self.seed, 0xC6, u64::from(*net), slot]);
                        (*net, v4_text(v4_from_hash(n, h)))
                    }
                }
            }
            Access::Nat { net, base, size } => {
                let off = rand::Rng::gen_range(rng, 0..u32::from((*size).max(1)));
                (*net, v4_text(base.wrapping_add(off)))
            }
            Access::Fixed { ips } => {
                let i = rand::Rng::gen_range(rng, 0..ips.len().max(1));
                let (net, ip) = ips.get(i).copied().unwrap_or((0, 0x0A00_0001));
                (net, v4_text(ip))
            }
            Access::Rotating { scope, size } => {
                let slot = rand::Rng::gen_range(rng, 0..(*size).max(1));
                let (net, ip) = self.proxy_exit(*scope, slot);
                (net, v4_text(ip))
            }
        };
        let n = network(net);
        Endpoint {
            ip,
            asn: n.asn,
            country: n.country,
        }
    }

    /// Exit `slot` of the residential proxy pool `scope`: a residential or mobile network
    /// weighted by where proxy exits are, and an address in it.
    fn proxy_exit(&self, scope: u64, slot: u64) -> (u16, u32) {
        let u = unit(hash(&[self.seed, 0x9E, scope, slot]));
        let i = self
            .proxy_cum
            .partition_point(|&c| c < u)
            .min(self.proxy_nets.len().saturating_sub(1));
        let net = self.proxy_nets.get(i).copied().unwrap_or(0);
        let ip = v4_from_hash(network(net), hash(&[self.seed, 0x9F, scope, slot]));
        (net, ip)
    }

    /// Where an access method is, for the billing country of its account.
    pub(crate) fn country_of(&self, access: &Access) -> &'static str {
        let net = match access {
            Access::Home { net, .. } | Access::Mobile { net, .. } | Access::Nat { net, .. } => *net,
            Access::Fixed { ips } => ips.first().map_or(0, |x| x.0),
            Access::Rotating { .. } => 0,
        };
        network(net).country
    }
}

/// The network with index `i` (index 0 for an out-of-range index, which setup never makes).
pub(crate) fn network(i: u16) -> &'static Network {
    NETWORKS.get(usize::from(i)).unwrap_or(&NETWORKS[0])
}

/// Index of the country with `code` (0, the United States, if unknown).
pub(crate) fn country_index(code: &str) -> usize {
    COUNTRIES.iter().position(|c| c.code == code).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{rng_for, Stream};

    #[test]
    fn access_kinds_give_consistent_endpoints() {
        let infra = Infra::new(9);
        let mut rng = rng_for(9, Stream::Behaviour, 0);
        let ci = country_index("DE");
        let home = Access::Home {
            net: infra.network_in(ci, NetKind::Home, &mut rng),
            house: 42,
            lease_days: 30,
        };
        let a = infra.endpoint(&home, 0, 1, &mut rng);
        let b = infra.endpoint(&home, 3_600_000, 2, &mut rng);
        assert_eq!(a, b, "a household keeps its address within a lease");
        assert_eq!(a.country, "DE");

        let mobile = |device| Access::Mobile {
            net: infra.network_in(0, NetKind::Mobile, &mut rng_for(1, Stream::Setup, 0)),
            device,
            v6: false,
        };
        let ips: std::collections::BTreeSet<String> = (0..500)
            .map(|d| infra.endpoint(&mobile(d), 0, d, &mut rng).ip)
            .collect();
        assert!(ips.len() <= CGNAT_POOL as usize, "CGNAT shares addresses");

        let rot = Access::Rotating {
            scope: 5,
            size: 1000,
        };
        let countries: std::collections::BTreeSet<&str> = (0..300)
            .map(|_| infra.endpoint(&rot, 0, 0, &mut rng).country)
            .collect();
        assert!(countries.len() > 8, "proxy exits span many countries");
    }
}
