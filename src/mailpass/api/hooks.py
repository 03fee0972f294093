"""``POST /hooks/{provider_id}/{kind}/{token}``: where a provider reports what became of the
mail it took (``intake``). Not for API keys: the token in the path names the hook, and each
payload is checked by its provider's signature."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailpass.api.mail import DirectRoute, services_of
from mailpass.api.responses import success_response
from mailpass.errors import Unauthorized
from mailpass.intake.models import Intake

__all__ = ["intake_answer", "router"]

router = APIRouter(prefix="/hooks", route_class=DirectRoute)


def intake_answer(intake: Intake) -> dict[str, object]:
    answer: dict[str, object] = {
        "received": intake.received,
        "recorded": intake.recorded,
        "duplicates": intake.duplicates,
        "unmatched": intake.unmatched,
        "ignored": intake.ignored,
    }
    if intake.confirmed:
        answer["confirmed"] = True
    return answer


@router.post("/{provider_id}/{kind}/{token}", include_in_schema=False)
async def receive(request: Request, provider_id: str, kind: str, token: str) -> Response:
    if not provider_id.isdigit() or len(provider_id) > 18:
        raise Unauthorized("no such webhook: copy its URL from `mailpass providers webhook`")
    intake = await services_of(request).intake.receive(
        int(provider_id), kind, token, request.headers, await request.body()
    )
    return success_response(intake_answer(intake))
