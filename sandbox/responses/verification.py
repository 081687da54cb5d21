"""Real-person verification (token store per access key): GenRealPersonVerificationToken,
GetRealPersonVerificationResult. A token verifies as passed unless its CertificateName contains "fail"
(a sandbox trigger for tests)."""

from __future__ import annotations

from typing import Any

from sandbox.responses.context import Builder, Call


async def gen_real_person_verification_token(call: Call) -> dict[str, Any]:
    params = call.params
    verification = call.account.add_token(
        params["CertificateNumber"], f"{params['CertificateName']}\n{params['MetaInfo']}"
    )
    return {"VerificationToken": verification.token}


async def get_real_person_verification_result(call: Call) -> dict[str, Any]:
    verification = call.account.token(call.params["VerificationToken"])
    name = verification.meta_info.partition("\n")[0]
    return {"Passed": "fail" not in name.lower()}


BUILDERS: dict[str, Builder] = {
    "GenRealPersonVerificationToken": gen_real_person_verification_token,
    "GetRealPersonVerificationResult": get_real_person_verification_result,
}
