"""Sign-in and sign-out pages, and ``/`` (the jobs list)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from jobplane_api.deps import SessionDep, SettingsDep
from jobplane_api.identity import AuthenticationFailed
from jobplane_api.ui.auth import OptionalUserDep, csrf_protect, end_session, start_session
from jobplane_api.ui.templating import render

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(csrf_protect)])


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never //host or a scheme: open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/jobs/"
    return target


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/jobs/", status_code=303)


@router.get("/login/")
def login_page(request: Request, user: OptionalUserDep, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "auth/login.html", {"next": _safe_next(next), "username": ""})


@router.post("/login/")
async def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/jobs/",
) -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    try:
        # PBKDF2 is slow on purpose: off the event loop.
        await run_in_threadpool(
            start_session,
            session=session,
            settings=settings,
            request=request,
            response=response,
            username=username.strip(),
            password=password,
        )
    except AuthenticationFailed as exc:
        return render(
            request,
            "auth/login.html",
            {"next": _safe_next(next), "username": username, "error": str(exc)},
            status_code=400,
        )
    return response


@router.post("/logout/")
def logout(request: Request, session: SessionDep) -> Response:
    response = RedirectResponse("/login/", status_code=303)
    end_session(session=session, request=request, response=response)
    return response
