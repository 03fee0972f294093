"""``mailpass domains``, run as a user runs it, against a real DNS server on 127.0.0.1."""

from __future__ import annotations

from dns_fixtures import LocalDns


def published(out: str) -> list[tuple[str, str, str, str]]:
    """(purpose, type, name, value) of each record line."""
    return [
        tuple(line.split("\t"))  # type: ignore[misc]
        for line in out.splitlines()
        if line and not line.startswith("\t")
    ]


async def test_add_verify_rotate_and_delete_from_the_command_line(mailpass, local_dns: LocalDns):
    env = {"MAILPASS_DNS_RESOLVER": local_dns.address, "MAILPASS_DNS_TIMEOUT": "1"}
    await mailpass("users", "create", "owner@example.com")
    user = ("--user", "owner@example.com")
    added = await mailpass("domains", "add", *user, "shop.test", env=env)
    assert added.code == 0, added.err
    records = published(added.out)
    assert [r[0] for r in records] == ["dkim", "spf", "dmarc"]
    assert "\tunchecked" in added.out

    unverified = await mailpass("domains", "verify", *user, "shop.test", env=env)
    assert unverified.code == 1
    assert "shop.test is not verified yet" in unverified.err
    assert "\tmissing: no TXT record at" in unverified.out

    for _purpose, kind, name, value in records[:2]:
        local_dns.add(name, kind, value)
    verified = await mailpass("domains", "verify", *user, "shop.test", env=env)
    assert verified.code == 0, verified.err
    selector = records[0][2].split(".")[0]
    listed = await mailpass("domains", "list", *user, env=env)
    assert listed.out.split("\t")[1:] == ["shop.test", "verified", selector + "\n"]

    rotated = await mailpass("domains", "rotate", *user, "shop.test", env=env)
    assert rotated.code == 0, rotated.err
    new = [r for r in published(rotated.out) if r[0] == "dkim"][1]
    removed = await mailpass("domains", "remove-key", *user, "shop.test", selector, env=env)
    assert removed.code != 0
    assert "is the key mail is signed with" in removed.err
    assert (
        await mailpass("domains", "remove-key", *user, "shop.test", new[2].split(".")[0])
    ).code == 0

    assert (await mailpass("domains", "delete", *user, "shop.test", env=env)).code == 0
    assert (await mailpass("domains", "list", *user, env=env)).out == ""
    missing = await mailpass("domains", "verify", *user, "shop.test", env=env)
    assert "has no domain shop.test" in missing.err


async def test_a_direct_provider_is_added_from_the_command_line(mailpass):
    await mailpass("users", "create", "owner@example.com")
    base = ("providers", "add", "--user", "owner@example.com", "--kind", "direct")
    added = await mailpass(*base, "--name", "own", "--default")
    assert added.code == 0, added.err
    refused = await mailpass(*base, "--name", "other", "--host", "mx.example.com")
    assert refused.code != 0
    assert "kind direct delivers to each recipient domain's MX hosts" in refused.err
    listed = await mailpass("providers", "list", "--user", "owner@example.com")
    assert "\town\tdirect\t" in listed.out
