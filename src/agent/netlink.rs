//! The address executor: a thin async shell over rtnetlink that reads links and addresses (with
//! lifetimes) into [`Observed`] and carries out [`Op::AddOrRefresh`] and [`Op::Remove`].
//!
//! VIPs are added as `/32` or `/128` with `IFA_CACHEINFO` lifetimes, `IFA_F_NOPREFIXROUTE`, and
//! for IPv6 `IFA_F_NODAD` (the VIP must answer at once; duplicate detection is the Lease's job).
//! Adds use `NLM_F_REPLACE`, so the same request refreshes the lifetimes of a present address.
//!
//! The netlink socket lives in the network namespace of the thread that calls
//! [`AddressTable::connect`]; the connection task runs on the current tokio runtime.

use std::io;
use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, CacheInfo,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};

use crate::agent::frames::MacAddr;
use crate::agent::plan::{
    Lifetime, Lifetimes, Observed, ObservedAddr, ObservedLink, Op, VipOnLink,
};

/// The kernel's "forever" lifetime (`INFINITY_LIFE_TIME`).
const INFINITE_LIFETIME: u32 = u32::MAX;

/// A netlink failure.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    Connect(#[source] io::Error),
    /// The kernel refused or the request failed.
    #[error("netlink: {what}: {source}")]
    Request {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: rtnetlink::Error,
    },
}

/// Reads and changes the address table of one network namespace.
#[derive(Clone, Debug)]
pub struct AddressTable {
    handle: rtnetlink::Handle,
}

impl AddressTable {
    /// Opens a netlink connection in the calling thread's network namespace. Must be called
    /// inside a tokio runtime.
    pub fn connect() -> Result<Self, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        tokio::spawn(connection);
        Ok(AddressTable { handle })
    }

    /// All links and all IPv4/IPv6 addresses.
    pub async fn observe(&self) -> Result<Observed, NetlinkError> {
        let links: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| request("list links", source))?;
        let addrs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| request("list addresses", source))?;
        Ok(Observed {
            links: links.iter().filter_map(link_from_message).collect(),
            addrs: addrs.iter().filter_map(addr_from_message).collect(),
        })
    }

    /// Adds `vip` with `lifetimes`, or replaces a present copy's lifetimes.
    pub async fn add_or_refresh(
        &self,
        vip: &VipOnLink,
        lifetimes: Lifetimes,
    ) -> Result<(), NetlinkError> {
        let mut req = self
            .handle
            .address()
            .add(vip.ifindex, vip.ip, vip.prefix_len())
            .replace();
        let msg = req.message_mut();
        let mut cache = CacheInfo::default();
        cache.ifa_valid = lifetimes.valid_secs;
        cache.ifa_preferred = lifetimes.preferred_secs.min(lifetimes.valid_secs);
        msg.attributes.push(AddressAttribute::CacheInfo(cache));
        let mut flags = AddressFlags::Noprefixroute;
        if vip.ip.is_ipv6() {
            flags |= AddressFlags::Nodad;
            msg.header.flags |= AddressHeaderFlags::Nodad;
        }
        msg.attributes.push(AddressAttribute::Flags(flags));
        req.execute()
            .await
            .map_err(|source| request(&format!("add {vip}"), source))
    }

    /// Removes `vip`; an address that is already gone (e.g. expired) is not an error.
    pub async fn remove(&self, vip: &VipOnLink) -> Result<(), NetlinkError> {
        let msg = match vip.ip {
            IpAddr::V4(ip) => rtnetlink::AddressMessageBuilder::<std::net::Ipv4Addr>::new()
                .index(vip.ifindex)
                .address(ip, vip.prefix_len())
                .build(),
            IpAddr::V6(ip) => rtnetlink::AddressMessageBuilder::<std::net::Ipv6Addr>::new()
                .index(vip.ifindex)
                .address(ip, vip.prefix_len())
                .build(),
        };
        match self.handle.address().del(msg).execute().await {
            Err(rtnetlink::Error::NetlinkError(e))
                if [libc::EADDRNOTAVAIL, libc::ENOENT, libc::ENODEV]
                    .contains(&e.raw_code().abs()) =>
            {
                Ok(())
            }
            other => other.map_err(|source| request(&format!("remove {vip}"), source)),
        }
    }

    /// Is link `ifindex` up with a carrier (`IFF_UP` and `IFF_LOWER_UP`)? A gone link is not.
    pub async fn link_running(&self, ifindex: u32) -> Result<bool, NetlinkError> {
        use rtnetlink::packet_route::link::LinkFlags;
        let links: Vec<LinkMessage> = match self
            .handle
            .link()
            .get()
            .match_index(ifindex)
            .execute()
            .try_collect()
            .await
        {
            Ok(links) => links,
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::ENODEV => {
                return Ok(false);
            }
            Err(source) => return Err(request("get link", source)),
        };
        Ok(links.iter().any(|l| {
            l.header.flags.contains(LinkFlags::Up) && l.header.flags.contains(LinkFlags::LowerUp)
        }))
    }

    /// Carries out an address operation; [`Op::Announce`] is not this module's job and is
    /// ignored here.
    pub async fn execute(&self, op: &Op) -> Result<(), NetlinkError> {
        match op {
            Op::AddOrRefresh { vip, lifetimes } => self.add_or_refresh(vip, *lifetimes).await,
            Op::Remove(vip) => self.remove(vip).await,
            Op::Announce { .. } => Ok(()),
        }
    }
}

fn request(what: &str, source: rtnetlink::Error) -> NetlinkError {
    NetlinkError::Request {
        what: what.to_string(),
        source,
    }
}

fn link_from_message(msg: &LinkMessage) -> Option<ObservedLink> {
    let name = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    let mac = (msg.header.link_layer_type == LinkLayerType::Ether)
        .then(|| {
            msg.attributes.iter().find_map(|a| match a {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            })
        })
        .flatten()
        .map(MacAddr);
    Some(ObservedLink {
        index: msg.header.index,
        name,
        mac,
    })
}

fn addr_from_message(msg: &AddressMessage) -> Option<ObservedAddr> {
    let find = |local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if local => Some(*ip),
            AddressAttribute::Address(ip) if !local => Some(*ip),
            _ => None,
        })
    };
    // IPv4 reports the own address as IFA_LOCAL (IFA_ADDRESS is the peer on point-to-point
    // links); IPv6 sends IFA_LOCAL only for point-to-point.
    let ip = match msg.header.family {
        AddressFamily::Inet => find(true).or_else(|| find(false))?,
        AddressFamily::Inet6 => find(false).or_else(|| find(true))?,
        _ => return None,
    };
    let lifetime = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::CacheInfo(c) if c.ifa_valid != INFINITE_LIFETIME => {
                Some(Lifetime::Finite {
                    valid_secs: c.ifa_valid,
                    preferred_secs: c.ifa_preferred,
                })
            }
            _ => None,
        })
        .unwrap_or(Lifetime::Permanent);
    Some(ObservedAddr {
        ifindex: msg.header.index,
        ip,
        prefix_len: msg.header.prefix_len,
        lifetime,
    })
}
