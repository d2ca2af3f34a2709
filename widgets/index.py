"""The index page: the apps the signed-in user may use, with a line about each."""

from __future__ import annotations

import ipywidgets as W

from . import policy
from .base import App, esc

__all__ = ["IndexApp"]


class IndexApp(App):
    """Lists the apps of the visitor's role (links keep the chosen language)."""

    title_key = "index.title"
    app_class = "pi-index"

    def build(self) -> None:
        with self.session() as s:
            self.role = s.role
        self._who = W.HTML()
        self._who.add_class("pi-who")
        self._list = W.HTML()
        self._list.add_class("pi-app-list")
        self._body.children = [self._who, self._list]

    def refresh(self) -> None:
        who = self.tr("common.signed_in_as", user=self.identity.user, tenant=self.identity.tenant)
        role = self.tr("index.role", role=self.tr(f"roles.{self.role}") if self.role else "–")
        self._who.value = f"<p>{esc(who)} · {esc(role)}</p>"
        apps = policy.apps_for_role(self.role)
        if not apps:
            self._list.value = f'<div class="pi-msg-warning">{esc(self.tr("index.none"))}</div>'
            return
        query = "?lang=en" if self.lang == "en" else ""
        items = "".join(
            f'<li class="pi-app-{esc(name)}"><a href="{esc(name)}.ipynb{query}">{esc(self.tr(f"apps.{name}"))}</a>'
            f'<div>{esc(self.tr(f"apps.{name}_help"))}</div></li>' for name in apps)
        self._list.value = f"<p>{esc(self.tr('index.intro'))}</p><ul class=\"pi-app-list\">{items}</ul>"
