//! Known-answer vectors for the two suites' XX handshakes and the
//! transport messages after them, from the Noise test-vector collection
//! "cacophony" (public domain): keys, prologue, each message's payload and
//! the ciphertext on the wire, and the final handshake hash.

pub(super) struct Vector {
    pub(super) suite: super::Suite,
    pub(super) prologue: &'static str,
    pub(super) init_static: &'static str,
    pub(super) init_ephemeral: &'static str,
    pub(super) resp_static: &'static str,
    pub(super) resp_ephemeral: &'static str,
    pub(super) handshake_hash: &'static str,
    /// (payload, ciphertext); senders alternate, the initiator first.
    pub(super) messages: &'static [(&'static str, &'static str)],
}

pub(super) const VECTORS: [Vector; 2] = [
    Vector {
        suite: super::Suite::AesGcmSha256,
        prologue: "4a6f686e2047616c74",
        init_static: "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
        init_ephemeral: "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
        resp_static: "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
        resp_ephemeral: "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
        handshake_hash: "1b7aefb1125762aa21a252890d00af54519638b76437444538f9a52f21e2e0dc",
        messages: &[
            (
                "4c756477696720766f6e204d69736573",
                "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573",
            ),
            (
                "4d757272617920526f746862617264",
                "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843757117acceb05bd7a45733bc22015c97a9d0cbaf41b80446d5988ff5127235d76b79eade70f473d6a4ef521fdcbeda5340d01e028ba793fc059f2724a83af05f12dda0448a7621a926b379a92477fd",
            ),
            (
                "462e20412e20486179656b",
                "c90f1cf77eba4e50edb038991565e36c9758943a989229b6051244dc4fbecb6946744b401af2ee1a5881b65fbb87fd07cb6a328ececc9ce6ce84c399dc332d4fd521fa4bb7f467ce909395",
            ),
            (
                "4361726c204d656e676572",
                "bc3fa77f6aca3e8466d7dc6bea10013e88a6a29add5132b461806c",
            ),
            (
                "4a65616e2d426170746973746520536179",
                "250b01074cdfe0df2ecf8ccbf1737b15a2ddb5b52fd9a396604e9c793cee3b3bb9",
            ),
            (
                "457567656e2042f6686d20766f6e2042617765726b",
                "449d4d433b3cdc3d02bf6fc881774b9df54366ebcffb9689bb13f14709822cd7ef42bcdb4d",
            ),
        ],
    },
    Vector {
        suite: super::Suite::ChaChaPolyBlake2s,
        prologue: "4a6f686e2047616c74",
        init_static: "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
        init_ephemeral: "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
        resp_static: "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
        resp_ephemeral: "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
        handshake_hash: "6c4c56cf71612f72d05ceb96c0155e6f4ea54a26b504c93de632a2db4a49d200",
        messages: &[
            (
                "4c756477696720766f6e204d69736573",
                "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573",
            ),
            (
                "4d757272617920526f746862617264",
                "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088437c365eb362a1c991b0557fe8a7fb187d99346765d93ec63db6c1b01504ebeec55a2298d2dbff80eff034d20595153f63a196a6cead1e11b2bb13e336fa13616dd3e8b0a070c882ed3f1a78c7c06c93",
            ),
            (
                "462e20412e20486179656b",
                "46c3307de83b014258717d97781c1f50936d8b7d50c0722a1739654d10392d415b670c114f79b9a4f80541570f77ce88802efa4220cff733e7b5668ba38059ec904b4b8eef9448085faf51",
            ),
            (
                "4361726c204d656e676572",
                "d5e83adfaac5dc324a68f1862df54549e56d209fba707205f328b2",
            ),
            (
                "4a65616e2d426170746973746520536179",
                "d102c9029b1f55c788f561ba7737afbccef9c9f1bf2f238167fd40ba9c1c134867",
            ),
            (
                "457567656e2042f6686d20766f6e2042617765726b",
                "cb1ce80960382c6d5d5e740ffb724d1432f0310b200fb6f8424120f506092744baa415e155",
            ),
        ],
    },
];
