//! The simulated Internet: countries, autonomous systems and their address blocks.
//!
//! Networks are real operators with their real AS numbers and countries; the address blocks
//! are representative prefixes of each operator, chosen to look right in a log, not an
//! authoritative registry (a detector must not key on them). Kinds matter more than exact
//! numbers: home broadband gives one stable address per household, mobile carriers put many
//! users behind few carrier-grade NAT addresses (or give each device its own IPv6 prefix),
//! businesses and universities sit behind small NAT blocks, and datacenter networks are where
//! scripts, app backends and VPNs live.

use std::net::{Ipv4Addr, Ipv6Addr};

/// What kind of access network an AS provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetKind {
    /// Residential broadband.
    Home,
    /// Mobile carrier (carrier-grade NAT for IPv4).
    Mobile,
    /// Business connectivity (corporate NAT blocks).
    Business,
    /// A university network.
    University,
    /// Cloud and hosting providers.
    Datacenter,
}

/// One autonomous system.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Network {
    /// AS number.
    pub asn: u32,
    /// Operator name (documentation only; never written to output).
    #[allow(dead_code)]
    pub name: &'static str,
    /// ISO 3166 country of the addresses.
    pub country: &'static str,
    /// Access kind.
    pub kind: NetKind,
    /// IPv4 prefixes: network address and prefix length.
    pub v4: &'static [([u8; 4], u8)],
    /// First two hextets of an IPv6 /32 the operator assigns to devices, if modelled.
    pub v6: Option<[u16; 2]>,
    /// E-mail domain of a university (its students and staff sign up with it).
    pub domain: Option<&'static str>,
}

/// One country with the weights of its users in each population.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Country {
    /// ISO 3166 code.
    pub code: &'static str,
    /// Relative share of ordinary API users.
    pub benign_weight: f64,
    /// Relative share of residential-proxy exit nodes.
    pub proxy_weight: f64,
    /// UTC offsets (hours) of its users; one is picked per account.
    pub utc_offsets: &'static [f64],
}

#[rustfmt::skip]
pub(crate) static COUNTRIES: &[Country] = &[
    Country { code: "US", benign_weight: 30.0, proxy_weight: 22.0, utc_offsets: &[-5.0, -5.0, -6.0, -7.0, -8.0, -8.0] },
    Country { code: "CA", benign_weight: 3.0, proxy_weight: 3.0, utc_offsets: &[-5.0, -8.0] },
    Country { code: "BR", benign_weight: 4.0, proxy_weight: 10.0, utc_offsets: &[-3.0] },
    Country { code: "MX", benign_weight: 2.0, proxy_weight: 5.0, utc_offsets: &[-6.0] },
    Country { code: "GB", benign_weight: 6.0, proxy_weight: 4.0, utc_offsets: &[0.0] },
    Country { code: "DE", benign_weight: 6.0, proxy_weight: 4.0, utc_offsets: &[1.0] },
    Country { code: "FR", benign_weight: 4.0, proxy_weight: 3.0, utc_offsets: &[1.0] },
    Country { code: "NL", benign_weight: 2.0, proxy_weight: 1.0, utc_offsets: &[1.0] },
    Country { code: "ES", benign_weight: 2.0, proxy_weight: 2.0, utc_offsets: &[1.0] },
    Country { code: "IT", benign_weight: 2.0, proxy_weight: 3.0, utc_offsets: &[1.0] },
    Country { code: "PL", benign_weight: 1.5, proxy_weight: 2.0, utc_offsets: &[1.0] },
    Country { code: "TR", benign_weight: 1.0, proxy_weight: 4.0, utc_offsets: &[3.0] },
    Country { code: "NG", benign_weight: 1.0, proxy_weight: 3.0, utc_offsets: &[1.0] },
    Country { code: "IN", benign_weight: 10.0, proxy_weight: 10.0, utc_offsets: &[5.5] },
    Country { code: "ID", benign_weight: 2.0, proxy_weight: 6.0, utc_offsets: &[7.0] },
    Country { code: "VN", benign_weight: 1.0, proxy_weight: 5.0, utc_offsets: &[7.0] },
    Country { code: "CN", benign_weight: 3.0, proxy_weight: 2.0, utc_offsets: &[8.0] },
    Country { code: "SG", benign_weight: 2.0, proxy_weight: 1.0, utc_offsets: &[8.0] },
    Country { code: "JP", benign_weight: 5.0, proxy_weight: 2.0, utc_offsets: &[9.0] },
    Country { code: "KR", benign_weight: 3.0, proxy_weight: 2.0, utc_offsets: &[9.0] },
    Country { code: "AU", benign_weight: 2.5, proxy_weight: 1.0, utc_offsets: &[10.0] },
    Country { code: "CH", benign_weight: 0.5, proxy_weight: 0.2, utc_offsets: &[1.0] },
    Country { code: "FI", benign_weight: 0.5, proxy_weight: 0.2, utc_offsets: &[2.0] },
    Country { code: "IE", benign_weight: 0.5, proxy_weight: 0.2, utc_offsets: &[0.0] },
];

use NetKind::{Business as B, Datacenter as D, Home as H, Mobile as M, University as U};

macro_rules! net {
    ($asn:expr, $name:expr, $cc:expr, $kind:expr, [$(($a:expr, $b:expr, $c:expr, $d:expr, $len:expr)),* $(,)?]) => {
        Network { asn: $asn, name: $name, country: $cc, kind: $kind, v4: &[$(([$a, $b, $c, $d], $len)),*], v6: None, domain: None }
    };
    ($asn:expr, $name:expr, $cc:expr, $kind:expr, [$(($a:expr, $b:expr, $c:expr, $d:expr, $len:expr)),* $(,)?], v6 = $h1:expr, $h2:expr) => {
        Network { asn: $asn, name: $name, country: $cc, kind: $kind, v4: &[$(([$a, $b, $c, $d], $len)),*], v6: Some([$h1, $h2]), domain: None }
    };
    ($asn:expr, $name:expr, $cc:expr, $kind:expr, [$(($a:expr, $b:expr, $c:expr, $d:expr, $len:expr)),* $(,)?], domain = $dom:expr) => {
        Network { asn: $asn, name: $name, country: $cc, kind: $kind, v4: &[$(([$a, $b, $c, $d], $len)),*], v6: None, domain: Some($dom) }
    };
}

#[rustfmt::skip]
pub(crate) static NETWORKS: &[Network] = &[
    // United States
    net!(7922, "Comcast", "US", H, [(73, 0, 0, 0, 8), (98, 192, 0, 0, 10), (24, 60, 0, 0, 14)], v6 = 0x2601, 0x0000),
    net!(701, "Verizon Fios", "US", H, [(71, 160, 0, 0, 11), (108, 16, 0, 0, 12)]),
    net!(7018, "AT&T Internet", "US", H, [(99, 0, 0, 0, 10), (76, 192, 0, 0, 10), (107, 192, 0, 0, 10)]),
    net!(20115, "Charter Spectrum", "US", H, [(47, 32, 0, 0, 11), (24, 176, 0, 0, 12)]),
    net!(22773, "Cox", "US", H, [(68, 0, 0, 0, 12), (98, 160, 0, 0, 11)]),
    net!(21928, "T-Mobile USA", "US", M, [(172, 56, 0, 0, 13)], v6 = 0x2607, 0xfb90),
    net!(6167, "Verizon Wireless", "US", M, [(174, 192, 0, 0, 10)], v6 = 0x2600, 0x1000),
    net!(20057, "AT&T Mobility", "US", M, [(166, 128, 0, 0, 10), (107, 64, 0, 0, 10)], v6 = 0x2600, 0x0380),
    net!(3356, "Lumen", "US", B, [(4, 0, 0, 0, 9), (8, 0, 0, 0, 9)]),
    net!(174, "Cogent", "US", B, [(38, 0, 0, 0, 8)]),
    net!(6461, "Zayo", "US", B, [(64, 125, 0, 0, 16)]),
    net!(32, "Stanford University", "US", U, [(171, 64, 0, 0, 14)], domain = "stanford.edu"),
    net!(25, "UC Berkeley", "US", U, [(128, 32, 0, 0, 16)], domain = "berkeley.edu"),
    net!(9, "Carnegie Mellon University", "US", U, [(128, 2, 0, 0, 16)], domain = "cmu.edu"),
    net!(36375, "University of Michigan", "US", U, [(141, 211, 0, 0, 16)], domain = "umich.edu"),
    net!(16509, "Amazon AWS", "US", D, [(3, 80, 0, 0, 12), (18, 204, 0, 0, 14), (54, 144, 0, 0, 12), (52, 0, 0, 0, 11)]),
    net!(15169, "Google Cloud", "US", D, [(34, 64, 0, 0, 10), (35, 184, 0, 0, 13)]),
    net!(8075, "Microsoft Azure", "US", D, [(20, 0, 0, 0, 11), (40, 64, 0, 0, 10), (52, 224, 0, 0, 11)]),
    net!(14061, "DigitalOcean", "US", D, [(104, 131, 0, 0, 16), (159, 65, 0, 0, 16), (167, 99, 0, 0, 16)]),
    net!(63949, "Akamai Linode", "US", D, [(45, 33, 0, 0, 17), (172, 104, 0, 0, 15)]),
    net!(20473, "Vultr", "US", D, [(45, 32, 0, 0, 16), (149, 28, 0, 0, 16)]),
    net!(31898, "Oracle Cloud", "US", D, [(129, 146, 0, 0, 16), (150, 136, 0, 0, 16)]),
    // Canada
    net!(812, "Rogers", "CA", H, [(99, 224, 0, 0, 11)]),
    net!(577, "Bell Canada", "CA", H, [(70, 48, 0, 0, 13), (142, 112, 0, 0, 13)]),
    net!(812, "Rogers Wireless", "CA", M, [(72, 136, 0, 0, 14)]),
    net!(239, "University of Toronto", "CA", U, [(128, 100, 0, 0, 16)], domain = "utoronto.ca"),
    // Brazil
    net!(26599, "Vivo", "BR", H, [(177, 32, 0, 0, 12), (187, 0, 0, 0, 11)]),
    net!(28573, "Claro NET", "BR", H, [(177, 0, 0, 0, 12), (189, 0, 0, 0, 11)]),
    net!(26615, "TIM Brasil", "BR", M, [(191, 128, 0, 0, 11)], v6 = 0x2804, 0x0018),
    net!(1251, "Universidade de Sao Paulo", "BR", U, [(143, 107, 0, 0, 16)], domain = "usp.br"),
    // Mexico
    net!(8151, "Telmex", "MX", H, [(187, 128, 0, 0, 10), (189, 128, 0, 0, 10)]),
    net!(28403, "Telcel", "MX", M, [(201, 144, 0, 0, 12)]),
    // United Kingdom
    net!(2856, "BT", "GB", H, [(86, 128, 0, 0, 10), (81, 128, 0, 0, 11)]),
    net!(5089, "Virgin Media", "GB", H, [(82, 0, 0, 0, 13), (86, 0, 0, 0, 11)]),
    net!(5607, "Sky Broadband", "GB", H, [(2, 24, 0, 0, 13), (90, 192, 0, 0, 11)]),
    net!(12576, "EE", "GB", M, [(31, 64, 0, 0, 13)], v6 = 0x2a01, 0x04c8),
    net!(25135, "Vodafone UK", "GB", M, [(185, 69, 144, 0, 22), (92, 40, 0, 0, 15)]),
    net!(8220, "Colt", "GB", B, [(212, 36, 0, 0, 17)]),
    net!(786, "Jisc (University of Oxford)", "GB", U, [(129, 67, 0, 0, 16)], domain = "ox.ac.uk"),
    net!(786, "Jisc (University of Cambridge)", "GB", U, [(131, 111, 0, 0, 16)], domain = "cam.ac.uk"),
    // Germany
    net!(3320, "Deutsche Telekom", "DE", H, [(79, 192, 0, 0, 10), (87, 128, 0, 0, 10), (91, 0, 0, 0, 10), (84, 128, 0, 0, 10)], v6 = 0x2003, 0x00e1),
    net!(3209, "Vodafone Germany", "DE", H, [(88, 64, 0, 0, 12), (94, 134, 0, 0, 15)]),
    net!(6805, "Telefonica Germany", "DE", M, [(77, 0, 0, 0, 11), (89, 204, 128, 0, 17)], v6 = 0x2a02, 0x3030),
    net!(3320, "Telekom Mobil", "DE", M, [(80, 187, 96, 0, 19)], v6 = 0x2a01, 0x0598),
    net!(3320, "Telekom Business", "DE", B, [(62, 153, 0, 0, 16), (80, 146, 0, 0, 15)]),
    net!(680, "DFN (TU Munich)", "DE", U, [(129, 187, 0, 0, 16)], domain = "tum.de"),
    net!(24940, "Hetzner", "DE", D, [(88, 198, 0, 0, 16), (78, 46, 0, 0, 15), (136, 243, 0, 0, 16)]),
    net!(14061, "DigitalOcean Frankfurt", "DE", D, [(138, 68, 0, 0, 16)]),
    // France
    net!(3215, "Orange", "FR", H, [(90, 0, 0, 0, 9), (86, 192, 0, 0, 10), (2, 0, 0, 0, 12)]),
    net!(12322, "Free", "FR", H, [(78, 192, 0, 0, 10), (82, 64, 0, 0, 11)]),
    net!(15557, "SFR", "FR", H, [(77, 192, 0, 0, 10), (84, 96, 0, 0, 11)]),
    net!(5410, "Bouygues Telecom", "FR", M, [(176, 128, 0, 0, 10)], v6 = 0x2a01, 0x0cb0),
    net!(3215, "Orange Business", "FR", B, [(193, 248, 0, 0, 14)]),
    net!(16276, "OVHcloud", "FR", D, [(51, 68, 0, 0, 16), (54, 36, 0, 0, 16), (137, 74, 0, 0, 16)]),
    // Netherlands
    net!(1136, "KPN", "NL", H, [(77, 160, 0, 0, 11), (145, 128, 0, 0, 11)]),
    net!(33915, "Ziggo", "NL", H, [(84, 24, 0, 0, 13), (94, 208, 0, 0, 12)]),
    net!(14061, "DigitalOcean Amsterdam", "NL", D, [(188, 166, 0, 0, 16)]),
    // Spain, Italy, Poland
    net!(3352, "Telefonica de Espana", "ES", H, [(83, 32, 0, 0, 11), (88, 0, 0, 0, 11)]),
    net!(12430, "Vodafone Spain", "ES", M, [(37, 132, 0, 0, 14)]),
    net!(3269, "TIM", "IT", H, [(79, 0, 0, 0, 11), (87, 0, 0, 0, 11), (93, 32, 0, 0, 11)]),
    net!(30722, "Vodafone Italia", "IT", M, [(5, 168, 0, 0, 13)]),
    net!(5617, "Orange Polska", "PL", H, [(83, 0, 0, 0, 11), (89, 64, 0, 0, 11)]),
    // Turkey, Nigeria
    net!(9121, "Turk Telekom", "TR", H, [(78, 160, 0, 0, 11), (88, 224, 0, 0, 11)]),
    net!(16135, "Turkcell", "TR", M, [(176, 216, 0, 0, 13)]),
    net!(29465, "MTN Nigeria", "NG", M, [(102, 88, 0, 0, 14), (105, 112, 0, 0, 12)]),
    net!(36873, "Airtel Nigeria", "NG", H, [(41, 184, 0, 0, 14), (197, 210, 0, 0, 15)]),
    // India
    net!(55836, "Reliance Jio", "IN", M, [(49, 32, 0, 0, 11), (157, 32, 0, 0, 11)], v6 = 0x2409, 0x4000),
    net!(45609, "Bharti Airtel", "IN", M, [(106, 192, 0, 0, 11), (223, 176, 0, 0, 12)], v6 = 0x2401, 0x4900),
    net!(24560, "Airtel Broadband", "IN", H, [(122, 160, 0, 0, 12), (59, 88, 0, 0, 13)]),
    net!(24309, "ACT Fibernet", "IN", H, [(49, 204, 0, 0, 14)]),
    net!(55824, "NKN (IIT Bombay)", "IN", U, [(103, 21, 124, 0, 22)], domain = "iitb.ac.in"),
    net!(4755, "Tata Communications", "IN", B, [(14, 140, 0, 0, 14)]),
    // Indonesia, Vietnam
    net!(7713, "Telkom Indonesia", "ID", H, [(36, 64, 0, 0, 11), (180, 240, 0, 0, 12)]),
    net!(23693, "Telkomsel", "ID", M, [(114, 120, 0, 0, 13)]),
    net!(7552, "Viettel", "VN", M, [(27, 64, 0, 0, 12), (171, 224, 0, 0, 11)]),
    net!(45899, "VNPT", "VN", H, [(113, 160, 0, 0, 11), (14, 160, 0, 0, 11)]),
    // China
    net!(4134, "China Telecom", "CN", H, [(116, 224, 0, 0, 12), (183, 0, 0, 0, 10), (61, 128, 0, 0, 10)]),
    net!(4837, "China Unicom", "CN", H, [(123, 112, 0, 0, 12), (221, 192, 0, 0, 11)]),
    net!(9808, "China Mobile", "CN", M, [(111, 0, 0, 0, 10), (223, 64, 0, 0, 11)], v6 = 0x2409, 0x8a00),
    net!(4538, "CERNET (Tsinghua University)", "CN", U, [(166, 111, 0, 0, 16)], domain = "tsinghua.edu.cn"),
    net!(45102, "Alibaba Cloud", "CN", D, [(47, 74, 0, 0, 15), (8, 208, 0, 0, 12)]),
    // Singapore
    net!(9506, "Singtel", "SG", H, [(116, 86, 0, 0, 15), (220, 255, 0, 0, 16)]),
    net!(4657, "StarHub", "SG", M, [(58, 182, 0, 0, 15)]),
    net!(7472, "National University of Singapore", "SG", U, [(137, 132, 0, 0, 16)], domain = "nus.edu.sg"),
    net!(16509, "Amazon AWS Singapore", "SG", D, [(13, 228, 0, 0, 15), (18, 136, 0, 0, 14)]),
    net!(132203, "Tencent Cloud", "SG", D, [(43, 128, 0, 0, 14), (129, 226, 0, 0, 16)]),
    // Japan
    net!(4713, "NTT OCN", "JP", H, [(114, 144, 0, 0, 12), (153, 128, 0, 0, 10), (180, 0, 0, 0, 12)]),
    net!(2516, "KDDI", "JP", H, [(106, 128, 0, 0, 10), (111, 96, 0, 0, 12)]),
    net!(17676, "SoftBank", "JP", H, [(126, 0, 0, 0, 8)]),
    net!(9605, "NTT Docomo", "JP", M, [(1, 66, 0, 0, 15), (49, 96, 0, 0, 12)], v6 = 0x2001, 0x0268),
    net!(2907, "SINET (University of Tokyo)", "JP", U, [(133, 11, 0, 0, 16)], domain = "u-tokyo.ac.jp"),
    net!(2914, "NTT Communications", "JP", B, [(61, 112, 0, 0, 13)]),
    net!(16509, "Amazon AWS Tokyo", "JP", D, [(13, 112, 0, 0, 14)]),
    // Korea
    net!(4766, "KT", "KR", H, [(175, 192, 0, 0, 10), (121, 128, 0, 0, 10)]),
    net!(9318, "SK Broadband", "KR", H, [(58, 120, 0, 0, 13), (1, 224, 0, 0, 12)]),
    net!(9644, "SK Telecom", "KR", M, [(223, 32, 0, 0, 11)]),
    net!(1237, "KREONET (KAIST)", "KR", U, [(143, 248, 0, 0, 16)], domain = "kaist.ac.kr"),
    // Australia
    net!(1221, "Telstra", "AU", H, [(1, 120, 0, 0, 13), (58, 160, 0, 0, 12), (101, 160, 0, 0, 11)]),
    net!(4804, "Optus", "AU", M, [(49, 176, 0, 0, 12), (211, 26, 0, 0, 15)]),
    // Switzerland, Finland, Ireland
    net!(559, "SWITCH (ETH Zurich)", "CH", U, [(129, 132, 0, 0, 16)], domain = "ethz.ch"),
    net!(3303, "Swisscom", "CH", H, [(85, 0, 0, 0, 13), (178, 192, 0, 0, 11)]),
    net!(24940, "Hetzner Finland", "FI", D, [(65, 108, 0, 0, 15), (95, 216, 0, 0, 15)]),
    net!(719, "Elisa", "FI", H, [(62, 78, 0, 0, 15), (87, 92, 0, 0, 14)]),
    net!(16509, "Amazon AWS Ireland", "IE", D, [(52, 208, 0, 0, 13), (54, 72, 0, 0, 14)]),
    net!(5466, "Eir", "IE", H, [(86, 40, 0, 0, 13)]),
];

/// A random IPv4 address inside one of the network's prefixes, avoiding `.0` and `.255`
/// (which real client addresses rarely are), drawn from a hash so pools can be recomputed.
pub(crate) fn v4_from_hash(net: &Network, h: u64) -> u32 {
    if net.v4.is_empty() {
        return 0x0A00_0001;
    }
    let (base, len) = net.v4[(h % net.v4.len() as u64) as usize];
    let len = u32::from(len.min(30));
    let base = u32::from_be_bytes(base);
    let host_bits = 32 - len;
    let mask = if host_bits == 32 {
        0
    } else {
        u32::MAX << host_bits
    };
    let host = ((h >> 16) as u32) & !mask;
    let mut ip = (base & mask) | host;
    let last = ip & 0xff;
    if last == 0 || last == 255 {
        ip = (ip & !0xff) | (1 + ((h >> 48) as u32 % 254));
    }
    ip
}

/// An IPv6 address in the network's /32: a per-device /64 from `device`, and an interface id
/// from `iid` (privacy addresses change per session).
pub(crate) fn v6_from_hash(prefix: [u16; 2], device: u64, iid: u64) -> Ipv6Addr {
    let hi = (u128::from(prefix[0]) << 112)
        | (u128::from(prefix[1]) << 96)
        | (u128::from(device & 0xffff_ffff) << 64);
    Ipv6Addr::from(hi | u128::from(iid))
}

/// Dotted-quad text of an IPv4 address.
pub(crate) fn v4_text(ip: u32) -> String {
    Ipv4Addr::from(ip).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_has_a_known_country_and_a_prefix() {
        for n in NETWORKS {
            assert!(COUNTRIES.iter().any(|c| c.code == n.country), "{}", n.name);
            assert!(!n.v4.is_empty(), "{}", n.name);
            assert_eq!(
                n.kind == NetKind::University,
                n.domain.is_some(),
                "{}",
                n.name
            );
        }
    }

    #[test]
    fn addresses_stay_inside_their_prefix() {
        for n in NETWORKS {
            for h in [0u64, 1, u64::MAX, 0xdead_beef_1234_5678] {
                let ip = v4_from_hash(n, h);
                let inside = n.v4.iter().any(|&(b, len)| {
                    let mask = u32::MAX << (32 - u32::from(len));
                    (ip & mask) == (u32::from_be_bytes(b) & mask)
                });
                assert!(inside, "{} {}", n.name, v4_text(ip));
                assert!(ip & 0xff != 0 && ip & 0xff != 255);
            }
        }
    }
}
