"""Models the structured-output tests share: nested, optional, enums, lists, $defs."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Literal, Optional, Union

from pydantic import BaseModel, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass
from typing_extensions import TypedDict


class Person(BaseModel):
    """Who someone is."""

    name: str
    age: int
    member: bool


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str = "Paris"
    postcode: Optional[str] = None


class Customer(BaseModel):
    """A customer and where to find them."""

    name: str = Field(description="full name")
    favourite: Color
    home: Address
    work: Optional[Address] = None
    others: list[Address] = []
    tags: list[str]
    score: float = Field(ge=0, le=10)
    kind: Literal["person", "company"]


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Shape(BaseModel):
    shape: Union[Address, Person]
    note: Optional[str] = Field(default=None, description="anything else")


@pydantic_dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Line:
    start: int
    end: int


class Movie(TypedDict):
    title: str
    year: int


#: Models whose request the OpenAI SDK can build (models, pydantic dataclasses).
SDK_MODELS = [Person, Customer, Node, Shape, Address, Point]  # Point last: no BaseModel
