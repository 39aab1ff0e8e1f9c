"""The example inventory's SQLAlchemy models (locations, devices, interfaces, prefixes, IP addresses)."""

from __future__ import annotations

import ipaddress

from sqlalchemy import ForeignKey, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

__all__ = [
    "DEVICE_ROLES",
    "PREFIX_STATUSES",
    "Device",
    "IPAddress",
    "Interface",
    "InventoryBase",
    "Location",
    "Prefix",
    "ensure_tables",
]

# (value, label) pairs, shaped for ChoiceVar.
DEVICE_ROLES = (("router", "Router"), ("switch", "Switch"), ("firewall", "Firewall"))
PREFIX_STATUSES = (("active", "Active"), ("reserved", "Reserved"), ("deprecated", "Deprecated"))


class InventoryBase(DeclarativeBase):
    """The inventory's own base: its tables live in the job-data database, next to nothing of jobplane's."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Location(InventoryBase):
    """A site devices stand in."""

    __tablename__ = "inventory_location"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")

    devices: Mapped[list[Device]] = relationship(back_populates="location", order_by="Device.name")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str | None:
        # Stored with the log entries that name this object; a row not yet saved has no address.
        return f"/inventory/locations/{self.id}/" if self.id is not None else None


class Device(InventoryBase):
    """A network device with a role, standing in one location."""

    __tablename__ = "inventory_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(30), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("inventory_location.id"), index=True)

    location: Mapped[Location] = relationship(back_populates="devices")
    interfaces: Mapped[list[Interface]] = relationship(
        back_populates="device", cascade="all, delete-orphan", order_by="Interface.name"
    )

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str | None:
        return f"/inventory/devices/{self.id}/" if self.id is not None else None


class Interface(InventoryBase):
    """A (physical or logical) interface of a device, such as Loopback0."""

    __tablename__ = "inventory_interface"
    __table_args__ = (UniqueConstraint("device_id", "name", name="uq_inventory_interface_device_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[int] = mapped_column(ForeignKey("inventory_device.id", ondelete="CASCADE"), index=True)

    device: Mapped[Device] = relationship(back_populates="interfaces")
    ip_addresses: Mapped[list[IPAddress]] = relationship(back_populates="interface", order_by="IPAddress.id")

    @property
    def is_loopback(self) -> bool:
        return self.name.lower().startswith("loopback")

    def __str__(self) -> str:
        return f"{self.device.name} {self.name}" if self.device is not None else self.name

    def get_absolute_url(self) -> str | None:
        return f"/inventory/interfaces/{self.id}/" if self.id is not None else None


class Prefix(InventoryBase):
    """An IP network in CIDR notation (``10.0.0.0/24``) with a status and, optionally, a location."""

    __tablename__ = "inventory_prefix"

    id: Mapped[int] = mapped_column(primary_key=True)
    network: Mapped[str] = mapped_column(String(50), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    location_id: Mapped[int | None] = mapped_column(ForeignKey("inventory_location.id"), index=True)

    location: Mapped[Location | None] = relationship()

    @property
    def ip_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.network)

    def __str__(self) -> str:
        return self.network

    def get_absolute_url(self) -> str | None:
        return f"/inventory/prefixes/{self.id}/" if self.id is not None else None


class IPAddress(InventoryBase):
    """An address with its mask (``10.0.0.1/24``), optionally assigned to an interface."""

    __tablename__ = "inventory_ip_address"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(50), index=True)
    interface_id: Mapped[int | None] = mapped_column(
        ForeignKey("inventory_interface.id", ondelete="SET NULL"), index=True
    )

    interface: Mapped[Interface | None] = relationship(back_populates="ip_addresses")

    @property
    def ip_interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(self.address)

    def __str__(self) -> str:
        return self.address

    def get_absolute_url(self) -> str | None:
        return f"/inventory/ip-addresses/{self.id}/" if self.id is not None else None


def ensure_tables(session: Session) -> None:
    """Create the inventory tables on the session's database if they are missing.

    Runs on a connection of its own and commits there, so the schema stays even when the job's own
    transaction is rolled back (a dry run).
    """
    InventoryBase.metadata.create_all(session.get_bind(), checkfirst=True)
