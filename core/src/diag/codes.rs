//! The table of diagnostic codes. Each code is stable once released: tools and CI configs match
//! on it. Every variant documents what it flags, why that is a problem, and how to fix it.
//! Errors are `E…`, warnings `W…`.

use super::Severity;

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = ($code:literal, $severity:ident, $title:literal), )*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed, e.g. `E022`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// Whether this code is an error or a warning.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// A one-line title of the check.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title,)* }
            }

            /// The code's documentation (what it flags, why, how to fix it), as written above
            /// its variant; `egressc explain CODE` prints it.
            pub fn explanation(self) -> &'static str {
                match self { $(Code::$variant => concat!($($doc, "\n"),*),)* }
            }

            /// The code written as `E022` (any case), if there is one.
            pub fn parse(text: &str) -> Option<Code> {
                Code::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
            }
        }
    };
}

codes! {
    /// **Flags** input that is not well-formed YAML or JSON (bad indentation, unclosed quotes,
    /// duplicate mapping keys). **Why**: nothing after the error can be read reliably.
    /// **Fix**: correct the syntax at the reported position, e.g. indent `spec:` children by
    /// the same amount.
    YamlSyntax = ("E001", Error, "YAML syntax error"),
    /// **Flags** an input stream larger than the byte budget (192 MiB).
    /// **Why**: protects `build` and CI runners from unbounded memory use.
    /// **Fix**: split the input into several files.
    InputTooLarge = ("E002", Error, "input exceeds the size budget"),
    /// **Flags** a stream with more documents than the document budget (100,000).
    /// **Why**: document-separator storms are a cheap denial of service.
    /// **Fix**: split the input into several files.
    TooManyDocuments = ("E003", Error, "too many documents in one stream"),
    /// **Flags** nesting deeper than the depth budget (64 levels).
    /// **Why**: deep nesting exhausts the stack; real manifests nest fewer than 15 levels.
    /// **Fix**: flatten the document; no egressc input needs this depth.
    NestingTooDeep = ("E004", Error, "nesting exceeds the depth budget"),
    /// **Flags** alias use beyond the alias budget (too many aliases, too many anchors, too
    /// many expanded events, or far more aliases than anchors).
    /// **Why**: this is the "billion laughs" YAML bomb pattern.
    /// **Fix**: write the values out, or use fewer aliases.
    AliasBudget = ("E005", Error, "alias expansion exceeds the budget"),
    /// **Flags** a stream with more YAML nodes or parser events than the structure budget.
    /// **Why**: bounds CPU and memory for one run.
    /// **Fix**: split the input into several files.
    TooManyNodes = ("E006", Error, "too many YAML nodes"),
    /// **Flags** a stream whose scalar text exceeds the scalar budget (128 MiB).
    /// **Why**: bounds memory for one run.
    /// **Fix**: remove the oversized values.
    ScalarBudget = ("E007", Error, "scalar text exceeds the budget"),
    /// **Flags** an input file that is not UTF-8 text (e.g. saved as UTF-16 or Latin-1, or a
    /// binary file with a `.yaml` name); the position is that of the first invalid byte.
    /// **Why**: YAML streams are UTF-8 here; guessing another encoding could change values.
    /// **Fix**: save the file as UTF-8 (`iconv -f UTF-16 -t UTF-8`), or remove the binary file.
    NotUtf8 = ("E008", Error, "input is not UTF-8"),
    /// **Flags** a document whose top level is not a mapping (e.g. a bare list or string).
    /// **Why**: every Kubernetes object is a mapping with `apiVersion`, `kind`, `metadata`.
    /// **Fix**: write the object as `apiVersion: …`, `kind: …`, `metadata: …`, `spec: …`.
    NotAnObject = ("E010", Error, "document is not an object"),
    /// **Flags** a document without `apiVersion` or `kind`.
    /// **Why**: egressc cannot tell what the document is.
    /// **Fix**: add `apiVersion: network.deckhouse.io/v1alpha1` and the `kind`.
    MissingTypeInfo = ("E011", Error, "missing apiVersion or kind"),
    /// **Flags** a document of a kind egressc does not read (e.g. a Deployment among gateway
    /// definitions, or a Node outside `--nodes`).
    /// **Why**: it is probably in the wrong place; silently skipping it would hide typos in
    /// `kind`. **Fix**: remove it, pass nodes with `--nodes`, or use `--ignore-unknown-kinds`.
    UnknownKind = ("E012", Error, "unknown kind"),
    /// **Flags** a document without `metadata.name`.
    /// **Why**: objects are identified and referenced by name.
    /// **Fix**: add `metadata: {name: my-gateway}`.
    MissingName = ("E013", Error, "missing metadata.name"),
    /// **Flags** a value of the wrong type (a list where a mapping belongs, a number where a
    /// string belongs) or an unknown enum value.
    /// **Why**: the Kubernetes API server rejects it too.
    /// **Fix**: write the value with the type the field expects, quoting strings like `"true"`.
    InvalidType = ("E014", Error, "value has the wrong type"),
    /// **Flags** a field the schema does not have (often a typo, e.g. `destinationCIDR`).
    /// **Why**: unknown fields are dropped by the API server, so the setting would silently
    /// not apply. **Fix**: use the suggested field name.
    UnknownField = ("E015", Error, "unknown field"),
    /// **Flags** a required field that is absent, e.g. `spec.egressGatewayName`.
    /// **Why**: the object cannot work without it.
    /// **Fix**: add the field.
    MissingField = ("E016", Error, "missing required field"),
    /// **Flags** a `metadata.name` that is not a DNS-1123 subdomain (lowercase `a-z`, `0-9`,
    /// `-`, `.`, at most 253 characters, alphanumeric at both ends), including look-alike
    /// non-ASCII letters such as Cyrillic `а` (U+0430).
    /// **Why**: the API server rejects such names. **Fix**: `my-gateway`, not `My_Gateway`.
    InvalidName = ("E020", Error, "invalid object name"),
    /// **Flags** a second object with the same kind and name (in any input file).
    /// **Why**: one would silently replace the other when applied.
    /// **Fix**: rename one of them, or delete the stale copy.
    DuplicateName = ("E021", Error, "duplicate object name"),
    /// **Flags** `spec.egressGatewayName` naming no EgressGateway of the input.
    /// **Why**: the policy would compile to a CiliumEgressGatewayPolicy whose traffic is
    /// dropped. **Fix**: use the suggested name, or add the gateway.
    UnknownGateway = ("E022", Error, "unknown EgressGateway"),
    /// **Flags** a `sourceIP.mode` whose settings block is missing, e.g. mode
    /// `VirtualIPAddress` without `virtualIPAddress.ip`.
    /// **Why**: Deckhouse's CRD (`oneOf`) and egressc both reject it: the source IP is unknown.
    /// **Fix**: add the block of the chosen mode.
    ModeBlockMissing = ("E023", Error, "source-IP mode without its settings block"),
    /// **Flags** an IP address that does not parse, or one written in a form the API server's
    /// `ipv4`/`ipv6` formats and Cilium refuse: spaces around it, leading zeros in an octet
    /// (`192.0.2.010`, octal to some parsers).
    /// **Why**: it cannot be used as a source address. **Fix**: write e.g. `192.0.2.10`.
    InvalidIp = ("E024", Error, "invalid IP address"),
    /// **Flags** a CIDR that does not parse (missing prefix length, prefix too long), or one
    /// written in a form the CRDs refuse: spaces around it (`" 10.0.0.0/8"`), leading zeros
    /// in an octet (`010.1.1.0/24`) or in the prefix length (`10.0.0.0/08`).
    /// **Why**: Cilium rejects it. **Fix**: write e.g. `198.51.100.0/24`.
    InvalidCidr = ("E025", Error, "invalid CIDR"),
    /// **Flags** a CIDR with host bits set, e.g. `198.51.100.7/24`.
    /// **Why**: the intent is ambiguous (one host or the network?) and Cilium matches the
    /// network anyway. **Fix**: write the network form `198.51.100.0/24`, or `/32` for a host.
    CidrHostBits = ("E026", Error, "CIDR has host bits set"),
    /// **Flags** IPv6 where the target Cilium version (`--cilium-version`) cannot use it:
    /// IPv6 destination/excluded CIDRs need 1.18+, an IPv6 egress IP (VIP) needs 1.20+.
    /// **Why**: the CiliumEgressGatewayPolicy would be rejected or ignored.
    /// **Fix**: raise `--cilium-version` to what the cluster runs, or use IPv4.
    Ipv6Unsupported = ("E027", Error, "IPv6 not supported by the target Cilium version"),
    /// **Flags** a VIP that can never be a host address: unspecified, loopback, multicast,
    /// link-local, limited broadcast, `0.0.0.0/8`, or IPv4-mapped IPv6.
    /// **Why**: the kernel will not send traffic from it. **Fix**: use an unused address of
    /// the egress nodes' public subnet, e.g. `192.0.2.10`.
    VipNotHostAddress = ("E028", Error, "VIP is not a usable host address"),
    /// **Flags** two EgressGateways with the same VIP.
    /// **Why**: two nodes could announce one address at once (ARP flapping, broken traffic).
    /// **Fix**: give each gateway its own VIP, or let policies share one gateway.
    DuplicateVip = ("E029", Error, "VIP used by two gateways"),
    /// **Flags** a policy with no `selectors`.
    /// **Why**: it would select no pods, and Cilium requires at least one selector.
    /// **Fix**: add `selectors: [{podSelector: {matchLabels: {app: backend}}}]`.
    EmptySelectors = ("E030", Error, "policy has no selectors"),
    /// **Flags** a policy with no `destinationCIDRs`.
    /// **Why**: no traffic would be redirected, and Cilium requires the field.
    /// **Fix**: add e.g. `destinationCIDRs: [0.0.0.0/0]`.
    EmptyDestinations = ("E031", Error, "policy has no destinationCIDRs"),
    /// **Flags** an interface name Linux would refuse: empty, longer than 15 bytes, or
    /// containing `/`, `:`, whitespace, or equal to `.`/`..`.
    /// **Why**: no node can have such an interface. **Fix**: e.g. `eth1`, `ens3`, `bond0.100`.
    InvalidInterface = ("E032", Error, "invalid interface name"),
    /// **Flags** a label key that is not `[prefix/]name` with a DNS-subdomain prefix (≤ 253)
    /// and a name of ≤ 63 characters `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
    /// **Why**: the API server rejects such selectors. **Fix**: e.g. `node-role.example.com/egress`.
    InvalidLabelKey = ("E033", Error, "invalid label key"),
    /// **Flags** a label value longer than 63 characters or with characters outside
    /// `[-A-Za-z0-9_.]` (alphanumeric at both ends); the empty value is valid.
    /// **Why**: the API server rejects it. **Fix**: e.g. `backend`, `""`.
    InvalidLabelValue = ("E034", Error, "invalid label value"),
    /// **Flags** a `matchExpressions` entry with an unknown operator, or values that do not
    /// fit it (`In`/`NotIn` need values; `Exists`/`DoesNotExist` must have none).
    /// **Why**: the API server rejects it. **Fix**: `{key: app, operator: In, values: [web]}`.
    InvalidSelectorExpression = ("E035", Error, "invalid matchExpressions entry"),
    /// **Flags** a malformed Node in the `--nodes` inventory.
    /// **Why**: election needs node names, labels and conditions.
    /// **Fix**: pass the output of `kubectl get nodes -o yaml` unchanged.
    InvalidNode = ("E036", Error, "invalid node in the inventory"),
    /// **Flags** a template override (`--templates`) that does not compile or fails while
    /// rendering: a syntax error, an undefined value, more work than a render may do (fuel:
    /// a loop that never ends), or one object larger than 16 MiB. Reported with the
    /// template's name and line; exit status 2.
    /// **Why**: the manifests cannot be produced. **Fix**: correct the template at that line.
    TemplateError = ("E050", Error, "template error"),
    /// **Flags** a template override that rendered something other than one valid object of
    /// the kind it must render: broken YAML, a duplicate key, another `kind` or name, or a
    /// field a CiliumEgressGatewayPolicy does not have. Reported with the template's name and
    /// the line of its output; exit status 2.
    /// **Why**: the API server would reject the object, or silently drop the field.
    /// **Fix**: correct the template so that its output is the object the built-in renders.
    TemplateOutputInvalid = ("E051", Error, "template rendered an invalid object"),
    /// **Flags** rendered manifests larger than the output budget (128 MiB); exit status 2.
    /// **Why**: bounds memory; no cluster applies a stream that size in one go.
    /// **Fix**: split the sources into several builds.
    OutputTooLarge = ("E052", Error, "rendered output exceeds the budget"),
    /// **Flags** one scalar (a single value or key) larger than the per-value limit (8 MiB),
    /// at its position. **Why**: no Kubernetes object can hold it (etcd stores objects up to
    /// 1.5 MiB, the API server takes requests up to 3 MiB), and refusing it before it is
    /// copied bounds memory. **Fix**: remove the value; data this large is not a manifest.
    ScalarTooLong = ("E060", Error, "one value exceeds the size limit"),
    /// **Flags** a gateway carrying the settings block of the mode it does not use (as well as
    /// its own). **Why**: the block is ignored; it usually means the mode was changed and the
    /// old settings forgotten. Deckhouse accepts such documents, so this is only a warning.
    /// **Fix**: delete the unused block.
    UnusedModeBlock = ("W001", Warning, "settings block of the other mode is ignored"),
    /// **Flags** an `excludedCIDRs` entry not inside any `destinationCIDRs` entry.
    /// **Why**: it excludes nothing; often a typo. **Fix**: correct or remove it.
    ExclusionOutsideDestinations = ("W002", Warning, "excluded CIDR outside every destination"),
    /// **Flags** an empty `podSelector` (`{}`).
    /// **Why**: it selects every pod of the cluster, sending all matching traffic through
    /// the gateway. **Fix**: add `matchLabels`, e.g. `io.kubernetes.pod.namespace: my-ns`.
    SelectsAllPods = ("W003", Warning, "podSelector selects every pod"),
    /// **Flags** a gateway name longer than 52 characters.
    /// **Why**: `active-for-<name>` would exceed the 63-character label name limit, so egressc
    /// uses a hashed label key that Deckhouse tooling will not recognise.
    /// **Fix**: shorten the name if you need Deckhouse-compatible labels.
    HashedActiveLabel = ("W004", Warning, "gateway name too long for a verbatim label"),
    /// **Flags** (with `--nodes`) a gateway whose nodeSelector matches no node of the inventory.
    /// **Why**: the gateway can never become active; its traffic would be dropped.
    /// **Fix**: correct the selector or label the egress nodes.
    NoMatchingNode = ("W005", Warning, "nodeSelector matches no node"),
    /// **Flags** IPv6 destinations routed through a gateway whose VIP is IPv4 (the reverse,
    /// an IPv6 VIP with IPv4 destinations, is error E040).
    /// **Why**: Cilium cannot translate IPv6 traffic to an IPv4 VIP: it leaves with the node's
    /// own IPv6 address of the VIP's interface, or (Cilium 1.20, cilium#48660) the whole
    /// policy fails when that interface has none. **Fix**: split the policy per family.
    FamilyMismatch = ("W006", Warning, "destination family differs from the VIP family"),
    /// **Flags** an IPv4 VIP ending in `.0` or `.255`: the network or broadcast address of its
    /// /24. **Why**: in a node subnet of /24 or narrower such an address is the network or
    /// broadcast address, never a host, so traffic from it fails; it is a host address only in
    /// a wider subnet (e.g. `192.0.2.255` in `192.0.2.0/23`). egressc does not know the
    /// subnet, so this is a warning. **Fix**: pick another address unless the subnet is wider.
    VipSubnetEdge = ("W007", Warning, "VIP is the network or broadcast address of its /24"),
    /// **Flags** a policy with IPv4 `destinationCIDRs` whose gateway has an IPv6 VIP (possible
    /// only with `--cilium-version 1.20`, the first release with IPv6 egress IPs).
    /// **Why**: Cilium's policy parser (cilium#44524) refuses an egress IP whose family differs
    /// from a destination's, so the whole CiliumEgressGatewayPolicy is ignored, IPv6 traffic
    /// included. **Fix**: route IPv4 destinations through a gateway with an IPv4 VIP.
    Ipv6VipWithIpv4Destinations = ("E040", Error, "IPv6 VIP with IPv4 destinations"),
    /// **Flags** two gateways whose `active-for-…` label keys are equal: both names are longer
    /// than 52 characters, share their first 41 characters and the 40 bits of hash that
    /// follow. **Why**: both CiliumEgressGatewayPolicies would select both active nodes.
    /// **Fix**: rename one of the gateways (a short name keeps its key verbatim).
    ActiveLabelCollision = ("E041", Error, "two gateways share an active-for label key"),
    /// **Flags** (with `--nodes`) a gateway whose nodeSelector matches nodes of the inventory
    /// but none of them is eligible (all NotReady, cordoned or being deleted).
    /// **Why**: the gateway has no active node, and Cilium drops its policies' traffic.
    /// **Fix**: bring a node of the group back (uncordon it, fix it) or widen the selector.
    NoEligibleNode = ("W010", Warning, "no matching node is eligible"),
    /// **Flags** (with `--nodes`) a `VirtualIPAddress` gateway given a static active node.
    /// **Why**: the VIP agent brings the address up only when the controller (`egressc sync`)
    /// grants it through the VIP Lease; static labels alone select a node that never holds
    /// the VIP, so the policy's traffic is not sent from it. **Fix**: run `egressc sync`
    /// (`egressc install`) and leave `--nodes` out, or use mode
    /// `PrimaryIPFromEgressGatewayNodeInterface`.
    VipNeedsController = ("W011", Warning, "VIP mode needs the egressc sync controller"),
    /// **Flags** a policy whose `excludedCIDRs` together cover every destination.
    /// **Why**: no traffic is redirected through the gateway; usually a typo or an exclusion
    /// that grew too wide. **Fix**: narrow the exclusions, or delete the policy.
    ExclusionsCoverDestinations = ("W012", Warning, "exclusions cover every destination"),
    /// **Flags** (with `--nodes`) a VIP equal to an `InternalIP` of a node in the inventory.
    /// **Why**: the address already belongs to a node; announcing it from the active node
    /// steals it (ARP/NDP conflict) and breaks that node's traffic.
    /// **Fix**: pick an unused address of the egress nodes' subnet.
    VipIsNodeAddress = ("W013", Warning, "VIP is a node's InternalIP"),
    /// **Flags** manifests that would run the default image `egressc:<version>` (the VIP agent
    /// of `build`, the controller of `install`): it is the tag `docker build -t
    /// egressc:<version> .` gives locally, which no registry serves. **Why**: the Pods would
    /// stay in `ImagePullBackOff`, and in VIP mode no VIP would ever come up.
    /// **Fix**: push the image built from `Dockerfile` and pass `--agent-image` / `--image`
    /// (Argo CD: the `agent-image` parameter; Helm: `image.repository`).
    DefaultImage = ("W030", Warning, "default image reference rendered"),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_and_prefix_matches_severity() {
        let mut seen = BTreeSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {}", code.as_str());
            let prefix = match code.severity() {
                Severity::Error => 'E',
                Severity::Warning => 'W',
            };
            assert!(code.as_str().starts_with(prefix), "{}", code.as_str());
            assert!(!code.title().is_empty());
            assert!(code.explanation().contains("**Fix**"), "{}", code.as_str());
            assert_eq!(Code::parse(&code.as_str().to_lowercase()), Some(*code));
        }
    }
}
