"""Vendor dialects: the same paths and shapes as PayHero/UpesiPay and PayNexus.

Each dialect only translates: it parses its vendor's request, calls the domain services,
and renders its vendor's answers and callbacks. No business rule lives here.
"""
