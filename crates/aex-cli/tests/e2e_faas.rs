//! End to end: the faas example. One `aex up` deploys the thumbnail function on an `sgx` node
//! and a `trustzone` node, starts their attested HTTPS servers and runs the example's client
//! script (`[[run]]`): two clients (two keys) invoke both instances with `aex fetch`, which
//! checks each receipt against the receipt key the verified certificate attests, and
//! `aex bill --cert` bills each instance with the key read from its verified certificate.
//! Then the link's threats: an anonymous client is refused and issued nothing; a receipt comes
//! back for the client's own key, input and output, under the attested key, its sequence going
//! on from the script's; a receipt altered by the provider, one from the other instance, and a
//! certificate of the other instance presented as this one's are each refused by `aex bill`.

use std::net::SocketAddr;
use std::time::Duration;

use aex_client::ClientKey;
use aex_metering::answer::{self, RECEIPT_HEADER};
use aex_metering::{ClientId, Receipt};
use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{example_descriptor, write_toml};
use aex_testkit::https::policy;
use aex_testkit::{free_addr, paths};

const EXAMPLE: &str = "faas";

#[test]
fn one_aex_up_invokes_both_instances_as_two_clients_and_bills_them() {
    let app = AppDir::new();
    let mut doc = example_descriptor(EXAMPLE, &[free_addr(), free_addr()]);
    let (sgx, tz) = (free_addr(), free_addr());
    let up = doc["up"].as_array_mut().expect("[[up]] steps");
    for (step, addr) in up.iter_mut().zip([sgx, tz]) {
        step["payload"] = toml::Value::String(format!("{{\"port\": {}}}", addr.port()));
    }
    let script = paths::example(EXAMPLE).join("demo.sh");
    doc["run"].as_array_mut().expect("[[run]]")[0]["command"] =
        toml::Value::Array(vec!["sh".into(), script.display().to_string().into()]);
    write_toml(app.path(), &doc);
    let dir = app.path().display().to_string();

    let mut cmd = cli::aex();
    cmd.args(["up", "--detach", &dir])
        .current_dir(app.path())
        .env("FAAS_SGX_URL", format!("https://{sgx}"))
        .env("FAAS_TZ_URL", format!("https://{tz}"));
    let up = cli::run_command(cmd, "aex up --detach (faas)".into(), COMMAND_TIMEOUT).ok();
    up.stderr_has(&[
        "Running `sh",
        "sgx (simulated)",
        "trustzone (simulated)",
        "Receipt `thumbnail` #3 for this client, verified under the attested receipt key",
        "Verified 5 receipt(s) of 2 client(s)",
        "Verified 3 receipt(s) of 2 client(s)",
    ]);
    assert!(up.stdout.contains("bill of thumb-sgx:") && up.stdout.contains("bill of thumb-tz:"));
    assert!(up.stdout.contains("P6 64 48"), "{}", up.stdout);
    let out = app.path().join(".aex/faas-demo");

    // The link, from a Rust client: the certificate names the receipt key, the receipt is
    // this client's, of this input and output, and the numbers go on from the script's.
    let alice = ClientKey::load_or_create(&out.join("alice.key")).expect("alice's key");
    let picture = std::fs::read(out.join("photo.ppm")).expect("the script's picture");
    let sgx_policy = policy(&app, "thumb-sgx");
    let call = |key: Option<&ClientKey>, addr: SocketAddr| {
        let session = aex_client::connect(addr, &sgx_policy, key, Duration::from_secs(15))
            .expect("thumb-sgx passes the deployer's policy");
        let extra = session.verified().extra.clone();
        let answer = session
            .send("POST", "/fn/thumbnail", &picture)
            .expect("an answer");
        (extra, answer)
    };
    let (extra, answer) = call(Some(&alice), sgx);
    assert_eq!(answer.status, 200);
    assert!(answer.body.starts_with(b"P6\n64 48\n255\n"));
    let receipt = answer::decode_header(answer.header(RECEIPT_HEADER).expect("a receipt"))
        .expect("a receipt");
    let key = answer::attested_key(&extra).expect("the certificate attests the receipt key");
    answer::check(
        &receipt,
        &key,
        ClientId(alice.fingerprint()),
        "thumbnail",
        &picture,
        &answer.body,
    )
    .expect("the receipt bills this very call");
    assert_eq!(receipt.sequence, 4, "alice made 3 calls in the script");

    // Anonymous: refused, and no receipt (nobody to bill).
    let (_, anonymous) = call(None, sgx);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header(RECEIPT_HEADER).is_none());
    // Not an image: the call failed, and is billed (it used what it used).
    let session = aex_client::connect(sgx, &sgx_policy, Some(&alice), Duration::from_secs(15))
        .expect("connect");
    let failed = session.send("POST", "/fn/thumbnail", b"GIF89a\n").unwrap();
    assert_eq!(failed.status, 422);
    let r = answer::decode_header(failed.header(RECEIPT_HEADER).unwrap()).unwrap();
    assert!(r.failed && r.sequence == 5, "{r:?}");
    answer::check(
        &r,
        &key,
        ClientId(alice.fingerprint()),
        "thumbnail",
        b"GIF89a\n",
        &failed.body,
    )
    .expect("a failed call's receipt checks against the message received");
    // The certificate's receipt key is not the other instance's: its receipts fail the check.
    let tz_session = aex_client::connect(
        tz,
        &policy(&app, "thumb-tz"),
        Some(&alice),
        Duration::from_secs(15),
    )
    .expect("thumb-tz passes the deployer's policy");
    let tz_answer = tz_session.send("POST", "/fn/thumbnail", &picture).unwrap();
    let tz_receipt = answer::decode_header(tz_answer.header(RECEIPT_HEADER).unwrap()).unwrap();
    let e = answer::check(
        &tz_receipt,
        &key,
        ClientId(alice.fingerprint()),
        "thumbnail",
        &picture,
        &tz_answer.body,
    )
    .unwrap_err();
    assert!(e.contains("another receipt key"), "{e}");

    // The provider's moves on the receipt files, each refused by `aex bill`.
    let file = |name: &str| out.join(name).display().to_string();
    let bill = |cert: &str, module: &str, receipts: &[String]| {
        let mut args = vec!["bill", "--module", module, "--cert", cert];
        args.extend(receipts.iter().map(String::as_str));
        app.aex(&args)
    };
    let sgx_cert = file("thumb-sgx.pem");
    let tz_cert = file("thumb-tz.pem");
    let alice_sgx = file("alice-thumb-sgx.receipts");
    bill(&sgx_cert, "thumb-sgx", std::slice::from_ref(&alice_sgx))
        .ok()
        .stderr_has(&["Verified 3 receipt(s) of 1 client(s)"]);
    // An inflated CPU time.
    let bytes = std::fs::read(&alice_sgx).unwrap();
    let mut receipts = Receipt::decode_all(&bytes).unwrap();
    receipts[1].usage.cpu_ns *= 10;
    let altered = file("altered.receipts");
    std::fs::write(
        &altered,
        receipts
            .iter()
            .flat_map(Receipt::encode)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    bill(&sgx_cert, "thumb-sgx", &[altered])
        .code(1)
        .stderr_has(&["receipt #2", "altered after signing"]);
    // The other instance's receipts under this one's attested key.
    bill(&sgx_cert, "thumb-sgx", &[file("bob-thumb-tz.receipts")])
        .code(1)
        .stderr_has(&["forged: signed by another receipt key"]);
    // The other instance's certificate presented as this one's: its evidence is trustzone's.
    bill(&tz_cert, "thumb-sgx", &[alice_sgx])
        .code(1)
        .stderr_has(&["not a certificate of `thumb-sgx`"]);

    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
}
